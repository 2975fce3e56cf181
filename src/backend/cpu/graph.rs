//! Graph aggregation `y[n,c,t,w] = Σ_k Σ_v z[n,k,c,t,v]·a[k,v,w]`, as K GEMMs per sample:
//! `y_n (c·t × w) = Σ_k z_nk (c·t × v) · a_k (v × w)`.

use rayon::prelude::*;

use super::parallel::reduce_over_samples;
use crate::backend::{GraphGeom, Scalar};

fn check(g: &GraphGeom, z: usize, a: usize, y: usize) {
    assert_eq!(z, g.z_len(), "graph: z length for {g:?}");
    assert_eq!(a, g.a_len(), "graph: a length for {g:?}");
    assert_eq!(y, g.y_len(), "graph: y length for {g:?}");
}

pub fn forward<T: Scalar>(g: &GraphGeom, z: &[T], a: &[T], y: &mut [T]) {
    check(g, z.len(), a.len(), y.len());
    let rows = g.c * g.t;
    let (v, vv) = (g.v, g.v * g.v);
    y.par_chunks_mut(rows * v)
        .zip(z.par_chunks(g.k * rows * v))
        .for_each(|(yn, zn)| {
            for k in 0..g.k {
                let beta = if k == 0 { T::zero() } else { T::one() };
                let zk = &zn[k * rows * v..(k + 1) * rows * v];
                let ak = &a[k * vv..(k + 1) * vv];
                T::gemm(
                    rows,
                    v,
                    v,
                    T::one(),
                    zk,
                    (v as isize, 1),
                    ak,
                    (v as isize, 1),
                    beta,
                    yn,
                    (v as isize, 1),
                );
            }
        });
}

pub fn backward<T: Scalar>(g: &GraphGeom, z: &[T], a: &[T], dy: &[T], dz: &mut [T], da: &mut [T]) {
    check(g, z.len(), a.len(), dy.len());
    assert_eq!(dz.len(), g.z_len(), "graph: dz length");
    assert_eq!(da.len(), g.a_len(), "graph: da length");
    let rows = g.c * g.t;
    let (v, vv) = (g.v, g.v * g.v);
    // dz_nk = dy_n · a_kᵀ
    dz.par_chunks_mut(g.k * rows * v)
        .zip(dy.par_chunks(rows * v))
        .for_each(|(dzn, dyn_)| {
            for k in 0..g.k {
                let ak = &a[k * vv..(k + 1) * vv];
                let dzk = &mut dzn[k * rows * v..(k + 1) * rows * v];
                T::gemm(
                    rows,
                    v,
                    v,
                    T::one(),
                    dyn_,
                    (v as isize, 1),
                    ak,
                    (1, v as isize),
                    T::zero(),
                    dzk,
                    (v as isize, 1),
                );
            }
        });
    // da_k += Σ_n z_nkᵀ · dy_n
    reduce_over_samples(g.n, da.len(), da, |range, acc| {
        for n in range {
            let zn = &z[n * g.k * rows * v..(n + 1) * g.k * rows * v];
            let dyn_ = &dy[n * rows * v..(n + 1) * rows * v];
            for k in 0..g.k {
                let zk = &zn[k * rows * v..(k + 1) * rows * v];
                T::gemm(
                    v,
                    rows,
                    v,
                    T::one(),
                    zk,
                    (1, v as isize),
                    dyn_,
                    (v as isize, 1),
                    T::one(),
                    &mut acc[k * vv..(k + 1) * vv],
                    (v as isize, 1),
                );
            }
        }
    });
}
