//! The built-in synthetic dataset: deterministic, well-formed, and learnable only from motion: a
//! nearest-class-mean classifier on raw coordinates stays far below a simple motion-feature one.

use leangcn::data::synthetic::{SyntheticConfig, SyntheticDataset, CLASS_NAMES};
use leangcn::data::ClipDataset;

fn clips(ds: &SyntheticDataset) -> Vec<(Vec<f32>, u32)> {
    let n = ds.clip_shape().len();
    (0..ds.len())
        .map(|i| {
            let mut out = vec![f32::NAN; n];
            let label = ds.load_clip(i, 0, &mut out).unwrap();
            (out, label)
        })
        .collect()
}

/// Nearest class mean (Euclidean) trained on `train`, accuracy on `val`.
fn ncm_accuracy(train: &[(Vec<f64>, u32)], val: &[(Vec<f64>, u32)], classes: usize) -> f64 {
    let dim = train[0].0.len();
    let mut means = vec![vec![0.0; dim]; classes];
    let mut counts = vec![0usize; classes];
    for (f, l) in train {
        counts[*l as usize] += 1;
        for (m, x) in means[*l as usize].iter_mut().zip(f) {
            *m += x;
        }
    }
    for (m, &c) in means.iter_mut().zip(&counts) {
        m.iter_mut().for_each(|x| *x /= c as f64);
    }
    let correct = val
        .iter()
        .filter(|(f, l)| {
            let dist = |m: &Vec<f64>| m.iter().zip(f).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
            let best = (0..classes)
                .min_by(|&a, &b| dist(&means[a]).total_cmp(&dist(&means[b])))
                .unwrap();
            best == *l as usize
        })
        .count();
    correct as f64 / val.len() as f64
}

/// Raw coordinates of the first person.
fn raw(clip: &[f32], frames: usize) -> Vec<f64> {
    clip[..frames * 75].iter().map(|&v| v as f64).collect()
}

/// View- and size-invariant motion features of the first person: per joint, the mean and spread of
/// its speed and of its height relative to the spine base, in units of the spine's length.
fn motion(clip: &[f32], frames: usize) -> Vec<f64> {
    let raw = |t: usize, v: usize, c: usize| clip[(t * 25 + v) * 3 + c] as f64;
    let spine = (0..frames)
        .map(|t| {
            (0..3)
                .map(|c| (raw(t, 2, c) - raw(t, 0, c)).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .sum::<f64>()
        / frames as f64;
    let at = |t: usize, v: usize, c: usize| raw(t, v, c) / spine;
    let mut f = Vec::new();
    for v in 0..25 {
        let speed: Vec<f64> = (1..frames)
            .map(|t| {
                (0..3)
                    .map(|c| (at(t, v, c) - at(t - 1, v, c)).powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        let height: Vec<f64> = (0..frames).map(|t| at(t, v, 1) - at(t, 0, 1)).collect();
        for series in [speed, height] {
            let mean = series.iter().sum::<f64>() / series.len() as f64;
            let spread = (series.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / series.len() as f64).sqrt();
            f.push(mean * 10.0);
            f.push(spread * 10.0);
        }
    }
    f
}

#[test]
fn raw_coordinates_are_not_enough_but_motion_is() {
    let cfg = SyntheticConfig {
        samples_per_class: 60,
        ..SyntheticConfig::default()
    };
    let train = clips(&SyntheticDataset::new(cfg.clone()).unwrap());
    let val = clips(&SyntheticDataset::new(cfg.validation()).unwrap());
    let features = |set: &[(Vec<f32>, u32)], f: &dyn Fn(&[f32], usize) -> Vec<f64>| {
        set.iter().map(|(c, l)| (f(c, cfg.frames), *l)).collect::<Vec<_>>()
    };
    let raw_acc = ncm_accuracy(&features(&train, &raw), &features(&val, &raw), cfg.classes);
    let motion_acc = ncm_accuracy(&features(&train, &motion), &features(&val, &motion), cfg.classes);
    println!(
        "nearest class mean: raw coordinates {:.1}%, motion features {:.1}% (chance {:.1}%)",
        100.0 * raw_acc,
        100.0 * motion_acc,
        100.0 / cfg.classes as f64
    );
    assert!(raw_acc < 0.5, "raw-coordinate templates reach {raw_acc}");
    assert!(motion_acc > 0.8, "motion features reach only {motion_acc}");
}

#[test]
fn clips_are_deterministic_finite_and_balanced() {
    let cfg = SyntheticConfig {
        samples_per_class: 5,
        ..SyntheticConfig::default()
    };
    let ds = SyntheticDataset::new(cfg.clone()).unwrap();
    let a = clips(&ds);
    let b = clips(&SyntheticDataset::new(cfg.clone()).unwrap());
    assert_eq!(a, b, "same seed, same bytes");
    let other = clips(&SyntheticDataset::new(SyntheticConfig { seed: 1, ..cfg.clone() }).unwrap());
    assert_ne!(a, other, "another seed, other clips");
    let val = clips(&SyntheticDataset::new(cfg.validation()).unwrap());
    assert!(
        val.iter().all(|v| !a.contains(v)),
        "validation clips are not training clips"
    );
    assert_eq!(ds.num_classes(), CLASS_NAMES.len());
    let mut per_class = vec![0; ds.num_classes()];
    let mut second_person = 0;
    for (clip, label) in &a {
        assert!(clip.iter().all(|v| v.is_finite()));
        per_class[*label as usize] += 1;
        let person = cfg.frames * 75;
        if clip[person..].iter().any(|&v| v != 0.0) {
            second_person += 1;
        }
    }
    assert!(per_class.iter().all(|&c| c == 5));
    assert!(
        second_person > 0 && second_person < a.len(),
        "some clips have a second person, some do not"
    );
}

#[test]
fn bad_settings_are_refused() {
    let err = SyntheticDataset::new(SyntheticConfig {
        classes: 13,
        ..SyntheticConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("1 to 12 classes"), "{err}");
    let err = SyntheticDataset::new(SyntheticConfig {
        persons: 3,
        ..SyntheticConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("persons must be 1 or 2"), "{err}");
}
