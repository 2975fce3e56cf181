//! The CPU backend's rounded conv modes (`tf32`, `bf16`): each GEMM operand is rounded, products and
//! sums are f32. So a rounded conv equals the f32 conv on pre-rounded operands bit for bit (the same
//! GEMM in the same order), and the bias gradient sums the unrounded dy.

mod cpu_support;

use cpu_support::{to_f32, Rng};
use leangcn::backend::cpu::CpuBackend;
use leangcn::backend::{Backend, ConvGeom, ConvMath};

fn rounded(m: ConvMath, v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| m.round(x)).collect()
}

#[test]
fn rounded_convs_are_f32_convs_of_rounded_operands() {
    let g = ConvGeom {
        n: 3,
        c_in: 5,
        c_out: 7,
        t_in: 13,
        v: 3,
        kt: 9,
        pad: 4,
        stride: 2,
    };
    let mut rng = Rng::new(11);
    let (x, w, dy) = (
        to_f32(&rng.vec(g.x_len())),
        to_f32(&rng.vec(g.w_len())),
        to_f32(&rng.vec(g.y_len())),
    );
    let b = to_f32(&rng.vec(g.c_out));
    let f32_be = CpuBackend::<f32>::new();
    for m in [ConvMath::Tf32, ConvMath::Bf16] {
        let be = CpuBackend::<f32>::with_conv_math(m);
        assert_eq!(be.conv_math(), m);
        assert!(be.describe().contains(m.name()), "{}", be.describe());
        let (xr, wr, dyr) = (rounded(m, &x), rounded(m, &w), rounded(m, &dy));
        assert_ne!(xr, x, "{m}: rounding changes random operands");

        let (mut y, mut y_ref) = (vec![0.0; g.y_len()], vec![0.0; g.y_len()]);
        be.conv_t_forward(&g, &x, &w, Some(&b), &mut y);
        f32_be.conv_t_forward(&g, &xr, &wr, Some(&b), &mut y_ref);
        assert_eq!(y, y_ref, "{m}: forward");

        let (mut dx, mut dx_ref) = (vec![0.0; g.x_len()], vec![0.0; g.x_len()]);
        be.conv_t_backward_input(&g, &dy, &w, &mut dx);
        f32_be.conv_t_backward_input(&g, &dyr, &wr, &mut dx_ref);
        assert_eq!(dx, dx_ref, "{m}: input gradient");

        let (mut dw, mut dw_ref) = (vec![0.5; g.w_len()], vec![0.5; g.w_len()]);
        let (mut db, mut db_ref, mut db_unused) = (vec![0.25; g.c_out], vec![0.25; g.c_out], vec![0.0; g.c_out]);
        be.conv_t_backward_weight(&g, &x, &dy, &mut dw, Some(&mut db));
        f32_be.conv_t_backward_weight(&g, &xr, &dyr, &mut dw_ref, Some(&mut db_unused));
        f32_be.conv_t_backward_weight(&g, &x, &dy, &mut vec![0.0; g.w_len()], Some(&mut db_ref));
        assert_eq!(dw, dw_ref, "{m}: weight gradient");
        assert_eq!(db, db_ref, "{m}: the bias gradient sums the unrounded dy");
    }
}
