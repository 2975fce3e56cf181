//! PYSKL's skeleton transforms, reproduced exactly (`pyskl/datasets/pipelines`).
//!
//! Arrays are `[M, T, V, C]` row-major. Values are carried as f64 with NumPy's precision of each step
//! applied explicitly (f16 centring, f32 bones and 2D arithmetic), so the f32 the network sees
//! matches PYSKL.

pub mod format_gcn_input;
pub mod layout;
pub mod numpy_random;
pub mod prenormalize;
pub mod random_rot;
pub mod skeleton_features;
pub mod test_time;
pub mod uniform_sample;

/// A skeleton array `[M, T, V, C]` (row-major) and whether NumPy would hold it as float32 (every
/// arithmetic result rounded to f32) rather than float64.
#[derive(Clone, Debug, PartialEq)]
pub struct Skeleton {
    pub shape: [usize; 4],
    pub data: Vec<f64>,
    pub is_f32: bool,
}

impl Skeleton {
    pub fn zeros(shape: [usize; 4], is_f32: bool) -> Skeleton {
        Skeleton {
            shape,
            data: vec![0.0; shape.iter().product()],
            is_f32,
        }
    }

    /// The flat index of `[m, t, v, c]`.
    pub fn index(&self, m: usize, t: usize, v: usize, c: usize) -> usize {
        let [_, nt, nv, nc] = self.shape;
        ((m * nt + t) * nv + v) * nc + c
    }

    /// Rounds `x` to this array's precision.
    fn round(&self, x: f64) -> f64 {
        if self.is_f32 {
            x as f32 as f64
        } else {
            x
        }
    }

    /// The values as f32, as `astype(np.float32)` gives them.
    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&x| x as f32).collect()
    }
}
