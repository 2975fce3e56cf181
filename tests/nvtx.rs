//! NVTX ranges and the profiler capture-range option.

use leangcn::nvtx::{enabled, range, ProfileSteps};

#[test]
fn profile_steps_parse_and_refuse_empty_ranges() {
    assert_eq!(
        "20..25".parse::<ProfileSteps>().unwrap(),
        ProfileSteps { start: 20, end: 25 }
    );
    for bad in ["5..5", "7..3", "20", "a..b", ""] {
        let err = bad.parse::<ProfileSteps>().unwrap_err().to_string();
        assert!(err.contains("--profile-steps") && err.contains("A..B"), "{bad}: {err}");
    }
}

#[test]
fn ranges_build_their_names_only_when_a_profiler_library_is_loaded() {
    let mut built = false;
    {
        let _outer = range(|| {
            built = true;
            "outer".into()
        });
        let _inner = range(|| "inner".into());
    }
    assert_eq!(built, enabled(), "the name is built iff NVTX is loaded");
    println!("NVTX library loaded: {}", enabled());
}
