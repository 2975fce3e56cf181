//! `UniformSampleFrames` (`pyskl/datasets/pipelines/sampling.py`) with `p_interval = 1`.

use super::numpy_random::NumpyRandomState;

/// How frames are drawn: training draws from the caller's generator; test mode reseeds NumPy's
/// generator with 255 on every call, so its indices depend only on (T, clip_len, num_clips).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleMode {
    Train,
    Test,
}

/// PYSKL's test-mode seed.
pub const TEST_SEED: u32 = 255;

/// The frame indices of `num_clips` clips of `clip_len` frames from a `total_frames`-frame
/// sequence, concatenated (`num_clips * clip_len` values, each in `0..total_frames`).
/// In test mode `rng` is ignored and a fresh generator seeded with 255 is used.
pub fn uniform_sample(
    total_frames: usize,
    clip_len: usize,
    num_clips: usize,
    mode: SampleMode,
    rng: &mut NumpyRandomState,
) -> Vec<usize> {
    assert!(
        total_frames > 0 && clip_len > 0,
        "uniform_sample: empty sequence or clip"
    );
    let mut test_rng;
    let rng = match mode {
        SampleMode::Train => rng,
        SampleMode::Test => {
            test_rng = NumpyRandomState::new(TEST_SEED);
            &mut test_rng
        }
    };
    let t = total_frames;
    let l = clip_len;
    let mut all = Vec::with_capacity(num_clips * l);
    for clip in 0..num_clips {
        // ratio = rand() * 0 + 1: the draw happens but num stays T, and randint(1) draws nothing.
        rng.random_sample();
        let off = 0;
        let inds: Vec<usize> = if t < l {
            let start = match mode {
                SampleMode::Train => rng.randint(0, t as i64) as usize,
                SampleMode::Test if t < num_clips => clip,
                SampleMode::Test => clip * t / num_clips,
            };
            (start..start + l).collect()
        } else if t < 2 * l {
            // A random subset of T - L extra steps among the L + 1 gaps, kept in order.
            let mut offset = vec![0usize; l + 1];
            for p in rng.choice_without_replacement(l + 1, t - l) {
                offset[p] = 1;
            }
            let mut cum = 0;
            (0..l)
                .map(|i| {
                    cum += offset[i];
                    i + cum
                })
                .collect()
        } else {
            // One uniform frame per segment [i*T/L, (i+1)*T/L).
            (0..l)
                .map(|i| {
                    let lo = i * t / l;
                    let hi = (i + 1) * t / l;
                    lo + rng.randint(0, (hi - lo) as i64) as usize
                })
                .collect()
        };
        all.extend(inds.into_iter().map(|i| (i + off) % t));
    }
    all
}
