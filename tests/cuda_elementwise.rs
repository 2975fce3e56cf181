//! The element-wise, dropout and permute kernels against the CPU backend on fresh random data with
//! poisoned outputs: all are exact (the same roundings), so they must agree bit for bit. Without a
//! GPU each test prints why it was skipped.

mod gpu_support;

use gpu_support::{assert_bits, fetch, gpu, normal, poisoned};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::Backend;
use leangcn::model::init::InitRng;

/// Lengths that are not multiples of a block, and one beyond a full grid of blocks.
const LENS: [usize; 4] = [1, 255, 4097, 1_100_003];

#[test]
fn elementwise_ops_match_the_cpu_bit_for_bit() {
    let Some(be) = gpu("elementwise_ops_match_the_cpu_bit_for_bit") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(11);
    for n in LENS {
        let (a, b) = (normal(&mut rng, n), normal(&mut rng, n));
        let (ga, gb) = (be.upload(&a), be.upload(&b));

        let mut want = a.clone();
        cpu.add_assign(&mut want, &b);
        let mut got = be.upload(&a);
        be.add_assign(&mut got, &gb);
        assert_bits("add_assign", &fetch(&be, &got), &want);

        let mut want = vec![0.0; n];
        cpu.mul(&a, &b, &mut want);
        let mut got = poisoned(&be, n);
        be.mul(&ga, &gb, &mut got);
        assert_bits("mul", &fetch(&be, &got), &want);

        let acc = normal(&mut rng, n);
        let mut want = acc.clone();
        cpu.mul_acc(&a, &b, &mut want);
        let mut got = be.upload(&acc);
        be.mul_acc(&ga, &gb, &mut got);
        assert_bits("mul_acc", &fetch(&be, &got), &want);

        let mut want = a.clone();
        cpu.scale(&mut want, 0.3);
        let mut got = be.upload(&a);
        be.scale(&mut got, 0.3);
        assert_bits("scale", &fetch(&be, &got), &want);

        let mut relu = a.clone();
        cpu.relu_forward(&mut relu);
        let mut got = be.upload(&a);
        be.relu_forward(&mut got);
        assert_bits("relu_forward", &fetch(&be, &got), &relu);

        let mut want = b.clone();
        cpu.relu_backward(&relu, &mut want);
        let mut got = be.upload(&b);
        be.relu_backward(&be.upload(&relu), &mut got);
        assert_bits("relu_backward", &fetch(&be, &got), &want);

        let acc = normal(&mut rng, n);
        let mut want = acc.clone();
        cpu.relu_backward_add(&relu, &b, &mut want);
        let mut got = be.upload(&acc);
        be.relu_backward_add(&be.upload(&relu), &gb, &mut got);
        assert_bits("relu_backward_add", &fetch(&be, &got), &want);

        let mut want = vec![0.0; n];
        cpu.abs(&a, &mut want);
        let mut got = poisoned(&be, n);
        be.abs(&ga, &mut got);
        assert_bits("abs", &fetch(&be, &got), &want);

        let mut got = poisoned(&be, n);
        be.fill(&mut got, -2.5);
        assert_bits("fill", &fetch(&be, &got), &vec![-2.5; n]);

        let mut got = poisoned(&be, n);
        be.copy(&ga, &mut got);
        assert_bits("copy", &fetch(&be, &got), &a);
    }
}

#[test]
fn dropout_masks_match_the_cpu_bit_for_bit() {
    let Some(be) = gpu("dropout_masks_match_the_cpu_bit_for_bit") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(12);
    for (n, p, seed) in [(4097, 0.5, 7u64), (1_100_003, 0.1, u64::MAX), (255, 0.0, 3)] {
        let x = normal(&mut rng, n);
        let mut want = x.clone();
        cpu.dropout(&mut want, p, seed);
        let mut got = be.upload(&x);
        be.dropout(&mut got, p, seed);
        assert_bits(&format!("dropout p {p} seed {seed}"), &fetch(&be, &got), &want);
    }
}

#[test]
fn permute_matches_the_cpu() {
    let Some(be) = gpu("permute_matches_the_cpu") else {
        return;
    };
    let cpu = CpuBackend::<f32>::new();
    let mut rng = InitRng::new(13);
    // the model's own permutations ([N, M, T, V, C] → [N, M, V, C, T] and back) and odd shapes
    for (dims, perm) in [
        (vec![3usize, 2, 17, 25, 3], vec![0usize, 1, 3, 4, 2]),
        (vec![3, 2, 25, 3, 17], vec![0, 1, 4, 2, 3]),
        (vec![7], vec![0]),
        (vec![2, 3, 5, 7, 11, 13], vec![5, 3, 1, 0, 2, 4]),
    ] {
        let n: usize = dims.iter().product();
        let x = normal(&mut rng, n);
        let mut want = vec![0.0; n];
        cpu.permute(&x, &dims, &perm, &mut want);
        let mut got = poisoned(&be, n);
        be.permute(&be.upload(&x), &dims, &perm, &mut got);
        assert_bits(&format!("permute {dims:?} by {perm:?}"), &fetch(&be, &got), &want);
    }
}

#[test]
fn pinned_uploads_overwrite_their_buffers_batch_after_batch() {
    let Some(be) = gpu("pinned_uploads_overwrite_their_buffers_batch_after_batch") else {
        return;
    };
    let mut rng = InitRng::new(14);
    let mut x = poisoned(&be, 30_001);
    let mut labels = be.upload_idx(&[u32::MAX; 7]);
    for batch in 0..3u32 {
        let host = normal(&mut rng, 30_001);
        be.upload_into(&host, &mut x);
        // the next batch's host data is written while this copy may still be in flight
        let ids: Vec<u32> = (0..7).map(|i| i * 10 + batch).collect();
        be.upload_idx_into(&ids, &mut labels);
        assert_bits(&format!("batch {batch}"), &fetch(&be, &x), &host);
        assert_eq!(be.download_idx(&labels), ids);
    }
}
