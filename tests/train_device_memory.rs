//! An out-of-memory error on the GPU says which batch size the device holds.

#[test]
fn out_of_device_memory_says_which_batch_size_fits() {
    use leangcn::train::trainer::with_batch_hint;
    use leangcn::train::TrainConfig;
    use leangcn::Error;
    let cfg = TrainConfig::preset("stgcn").unwrap();
    let oom = |total_mib| Error::DeviceMemory {
        requested_mib: 900,
        free_mib: 100,
        total_mib,
        hint: String::new(),
    };
    let fits = |total_mib| -> u64 {
        let msg = with_batch_hint(oom(total_mib), &cfg).to_string();
        assert!(
            msg.contains("out of device memory allocating 900 MiB (100 MiB free"),
            "{msg}"
        );
        assert!(msg.contains("batch 128 needs about"), "{msg}");
        msg.rsplit("--batch-size ").next().unwrap().parse().unwrap()
    };
    println!("{}", with_batch_hint(oom(80 * 1024), &cfg));
    let (small, large) = (fits(16 * 1024), fits(80 * 1024));
    assert!(
        small >= 1 && large > 4 * small,
        "16 GiB fits {small}, 80 GiB fits {large}"
    );
    // other errors pass through unchanged
    let other = with_batch_hint(Error::Cuda("launch".into()), &cfg).to_string();
    assert_eq!(other, "CUDA: launch");
}
