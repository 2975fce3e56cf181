//! `RandomRot(theta)` (`pyskl/datasets/pipelines/pose_related.py`).

use super::numpy_random::NumpyRandomState;
use super::Skeleton;

/// The 3D rotation `rz · ry · rx` for angles `[θx, θy, θz]`.
pub fn rotation_3d(theta: [f64; 3]) -> [[f64; 3]; 3] {
    let [(s0, c0), (s1, c1), (s2, c2)] = theta.map(f64::sin_cos);
    let rx = [[1.0, 0.0, 0.0], [0.0, c0, s0], [0.0, -s0, c0]];
    let ry = [[c1, 0.0, -s1], [0.0, 1.0, 0.0], [s1, 0.0, c1]];
    let rz = [[c2, s2, 0.0], [-s2, c2, 0.0], [0.0, 0.0, 1.0]];
    matmul(&matmul(&rz, &ry), &rx)
}

/// The 2D rotation `[[c, −s], [s, c]]`.
pub fn rotation_2d(theta: f64) -> [[f64; 2]; 2] {
    let (s, c) = theta.sin_cos();
    [[c, -s], [s, c]]
}

fn matmul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut r = [[0.0; 3]; 3];
    for (i, row) in r.iter_mut().enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            *x = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    r
}

/// Rotates `skel` (C = 2 or 3) by random angles: 3D θ ~ U(−θ, θ)³; 2D θ ~ U(−θ, 1) (PYSKL calls
/// `np.random.uniform(-theta)`, whose upper bound defaults to 1). All-zero skeletons are unchanged.
pub fn random_rot(skel: &mut Skeleton, theta: f64, rng: &mut NumpyRandomState) {
    if skel.data.iter().all(|x| x.abs() <= 1e-8) {
        return;
    }
    let c = skel.shape[3];
    if c == 3 {
        let angles = [0; 3].map(|_| -theta + 2.0 * theta * rng.random_sample());
        let r = rotation_3d(angles);
        for p in skel.data.chunks_exact_mut(3) {
            let x = [p[0], p[1], p[2]];
            for (a, out) in p.iter_mut().enumerate() {
                *out = r[a][0] * x[0] + r[a][1] * x[1] + r[a][2] * x[2];
            }
        }
    } else {
        let angle = -theta + (1.0 + theta) * rng.random_sample();
        let r = rotation_2d(angle);
        for p in skel.data.chunks_exact_mut(c) {
            let x = [p[0], p[1]];
            p[0] = r[0][0] * x[0] + r[0][1] * x[1];
            p[1] = r[1][0] * x[0] + r[1][1] * x[1];
        }
    }
    let rounded: Vec<f64> = skel.data.iter().map(|&x| skel.round(x)).collect();
    skel.data = rounded;
}
