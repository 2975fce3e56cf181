//! Known answers of instruction families run through the whole executor (parser, decoder,
//! interpreter), from hand-written PTX: each modifier must reach the semantics it names. The
//! answers come from the PTX ISA's definitions, worked out here by hand.

mod support;

use support::{Arg, Emulator};

/// Runs a one-thread kernel whose body stores `n` 32-bit results to `out[0..n]` and returns them.
fn run_scalar(body: &str, n: usize) -> Vec<u32> {
    let ptx = format!(
        ".version 9.0\n.target sm_80\n.address_size 64\n\
         .visible .entry k(.param .u64 out)\n{{\n\
         .reg .pred %p<8>;\n.reg .b16 %h<8>;\n.reg .b32 %r<40>;\n.reg .f32 %f<40>;\n.reg .b64 %rd<16>;\n.reg .f64 %fd<8>;\n\
         ld.param.u64 %rd1, [out];\n{body}\nret;\n}}\n"
    );
    let emu = Emulator::new();
    let m = emu.load(&ptx);
    let out = emu.upload(&vec![0u32; n]);
    emu.launch(&m, "k", [1, 1, 1], [1, 1, 1], 0, &[Arg::Ptr(out)])
        .unwrap_or_else(|f| panic!("{f}"));
    emu.download(out, n)
}

#[test]
fn float_rounding_modes_reach_their_semantics() {
    // 1 + 2^-24 is halfway between 1 and 1 + 2^-23: rn ties to even (1), rp rounds up, rz and rm
    // down; -(1 + 2^-24) rounds away from zero only under rm
    let got = run_scalar(
        "mov.f32 %f1, 0f3F800000;\n mov.f32 %f2, 0f33800000;\n\
         add.rn.f32 %f3, %f1, %f2;\n st.global.f32 [%rd1], %f3;\n\
         add.rz.f32 %f4, %f1, %f2;\n st.global.f32 [%rd1+4], %f4;\n\
         add.rp.f32 %f5, %f1, %f2;\n st.global.f32 [%rd1+8], %f5;\n\
         add.rm.f32 %f6, %f1, %f2;\n st.global.f32 [%rd1+12], %f6;\n\
         neg.f32 %f7, %f1;\n neg.f32 %f8, %f2;\n\
         add.rm.f32 %f9, %f7, %f8;\n st.global.f32 [%rd1+16], %f9;\n\
         add.rz.f32 %f10, %f7, %f8;\n st.global.f32 [%rd1+20], %f10;\n\
         mul.rp.f32 %f11, %f1, 0f3F800001;\n st.global.f32 [%rd1+24], %f11;\n\
         fma.rz.f32 %f12, %f2, %f2, %f1;\n st.global.f32 [%rd1+28], %f12;\n\
         fma.rp.f32 %f13, %f2, %f2, %f1;\n st.global.f32 [%rd1+32], %f13;",
        9,
    );
    let want = [
        0x3F80_0000, // 1
        0x3F80_0000, // 1
        0x3F80_0001, // 1 + 2^-23
        0x3F80_0000, // 1
        0xBF80_0001, // -(1 + 2^-23)
        0xBF80_0000, // -1
        0x3F80_0001, // 1·(1 + 2^-23) exactly
        0x3F80_0000, // 1 + 2^-48 toward zero
        0x3F80_0001, // 1 + 2^-48 upward
    ];
    assert_eq!(got, want, "{got:08x?}");
}

#[test]
fn conversions_saturate_round_and_pack_as_the_isa_says() {
    let got = run_scalar(
        // float → int: NaN gives 0, out of range saturates, rni ties to even, rmi floors
        "mov.f32 %f1, 0f7FC00000;\n cvt.rzi.s32.f32 %r1, %f1;\n st.global.u32 [%rd1], %r1;\n\
         mov.f32 %f2, 0f4F800000;\n cvt.rzi.s32.f32 %r2, %f2;\n st.global.u32 [%rd1+4], %r2;\n\
         mov.f32 %f3, 0fC0200000;\n cvt.rni.s32.f32 %r3, %f3;\n st.global.u32 [%rd1+8], %r3;\n\
         cvt.rmi.s32.f32 %r4, %f3;\n st.global.u32 [%rd1+12], %r4;\n\
         cvt.rzi.u32.f32 %r5, %f3;\n st.global.u32 [%rd1+16], %r5;\n\
         mov.f32 %f4, 0f3FC00000;\n cvt.rni.s32.f32 %r6, %f4;\n st.global.u32 [%rd1+20], %r6;\n\
         // bf16x2: a into the upper half, b into the lower; 1 + 2^-8 ties to even (1.0)\n\
         mov.f32 %f5, 0f3F808000;\n mov.f32 %f6, 0fC0400000;\n\
         cvt.rn.bf16x2.f32 %r7, %f6, %f5;\n st.global.u32 [%rd1+24], %r7;\n\
         // tf32: nearest, ties away from zero, low 13 bits zero\n\
         mov.f32 %f7, 0f3F801000;\n cvt.rna.tf32.f32 %r8, %f7;\n st.global.u32 [%rd1+28], %r8;\n\
         // integer widening and narrowing\n\
         mov.u32 %r9, -5;\n cvt.s64.s32 %rd2, %r9;\n cvt.u32.u64 %r10, %rd2;\n st.global.u32 [%rd1+32], %r10;\n\
         shr.u64 %rd3, %rd2, 32;\n cvt.u32.u64 %r11, %rd3;\n st.global.u32 [%rd1+36], %r11;\n\
         mov.u32 %r12, 300;\n cvt.sat.u8.u32 %h1, %r12;\n cvt.u32.u16 %r13, %h1;\n st.global.u32 [%rd1+40], %r13;\n\
         // f64 → f32 rounding, round to integral in f64\n\
         mov.f64 %fd1, 0d3FF0000010000000;\n cvt.rz.f32.f64 %f8, %fd1;\n st.global.f32 [%rd1+44], %f8;\n\
         cvt.rp.f32.f64 %f9, %fd1;\n st.global.f32 [%rd1+48], %f9;\n\
         mov.f64 %fd2, 0d4004000000000000;\n cvt.rni.f64.f64 %fd3, %fd2;\n cvt.rn.f32.f64 %f10, %fd3;\n st.global.f32 [%rd1+52], %f10;",
        14,
    );
    let want = [
        0,           // NaN → 0
        0x7FFF_FFFF, // 2^32 saturates to INT_MAX
        0xFFFF_FFFE, // -2.5 → -2 (ties to even)
        0xFFFF_FFFD, // floor(-2.5) = -3
        0,           // -2.5 → u32 saturates at 0
        2,           // 1.5 → 2 (ties to even)
        0xC040_3F80, // bf16(-3.0) << 16 | bf16(1 + 2^-8) = 1.0
        0x3F80_2000, // 1 + 2^-11 ties away from zero → 1 + 2^-10
        0xFFFF_FFFB, // -5's low word
        0xFFFF_FFFF, // -5 sign-extended: the high word
        255,         // 300 saturates to 255
        0x3F80_0000, // 1 + 2^-24 (a tie in f32) toward zero
        0x3F80_0001, // 1 + 2^-24 upward
        0x4000_0000, // rni(2.5) = 2 (ties to even)
    ];
    assert_eq!(got, want, "{got:08x?}");
}

#[test]
fn integer_instructions_take_width_and_signedness_from_their_types() {
    let got = run_scalar(
        "mov.u32 %r1, -7;\n mov.u32 %r2, 3;\n\
         div.s32 %r3, %r1, %r2;\n st.global.u32 [%rd1], %r3;\n\
         rem.s32 %r4, %r1, %r2;\n st.global.u32 [%rd1+4], %r4;\n\
         div.u32 %r5, %r1, %r2;\n st.global.u32 [%rd1+8], %r5;\n\
         shr.s32 %r6, %r1, 40;\n st.global.u32 [%rd1+12], %r6;\n\
         shr.u32 %r7, %r1, 40;\n st.global.u32 [%rd1+16], %r7;\n\
         mul.hi.s32 %r8, %r1, %r2;\n st.global.u32 [%rd1+20], %r8;\n\
         mul.wide.u32 %rd2, %r1, %r2;\n shr.u64 %rd3, %rd2, 32;\n cvt.u32.u64 %r9, %rd3;\n st.global.u32 [%rd1+24], %r9;\n\
         min.s32 %r10, %r1, %r2;\n st.global.u32 [%rd1+28], %r10;\n\
         min.u32 %r11, %r1, %r2;\n st.global.u32 [%rd1+32], %r11;\n\
         bfe.s32 %r12, %r1, 1, 3;\n st.global.u32 [%rd1+36], %r12;\n\
         bfi.b32 %r13, %r2, 0, 4, 2;\n st.global.u32 [%rd1+40], %r13;\n\
         prmt.b32 %r14, %r1, %r2, 0x4321;\n st.global.u32 [%rd1+44], %r14;\n\
         popc.b32 %r15, %r1;\n st.global.u32 [%rd1+48], %r15;\n\
         setp.lt.s32 %p1, %r1, %r2;\n setp.lt.u32 %p2, %r1, %r2;\n selp.u32 %r16, 1, 0, %p1;\n selp.u32 %r17, 1, 0, %p2;\n\
         add.s32 %r18, %r16, %r17;\n add.s32 %r18, %r18, %r16;\n st.global.u32 [%rd1+52], %r18;",
        14,
    );
    let want = [
        0xFFFF_FFFE, // -7 / 3 = -2 (truncates)
        0xFFFF_FFFF, // -7 rem 3 = -1 (the dividend's sign)
        0x5555_5553, // 4294967289 / 3
        0xFFFF_FFFF, // shr.s32 by >= 32: the sign
        0,           // shr.u32 by >= 32: 0
        0xFFFF_FFFF, // high word of -21
        2,           // (2^32 - 7)·3 >> 32
        0xFFFF_FFF9, // min.s32 = -7
        3,           // min.u32 = 3
        0xFFFF_FFFC, // bits 1..3 of ...11001 = 100, sign-extended: -4
        0x30,        // 3 inserted at bit 4
        0x03FF_FFFF, // bytes b7..b0 = 00 00 00 03 FF FF FF F9; selectors (lsb first) 1, 2, 3, 4
        30,          // popc(0xFFFFFFF9)
        2,           // lt.s32 true (counted twice), lt.u32 false
    ];
    assert_eq!(got, want, "{got:08x?}");
}

/// Runs a one-warp kernel of `body` with `%r1` = the lane, storing `%r2` per lane.
fn run_warp(body: &str) -> Vec<u32> {
    let ptx = format!(
        ".version 9.0\n.target sm_80\n.address_size 64\n\
         .visible .entry k(.param .u64 out)\n{{\n\
         .reg .pred %p<8>;\n.reg .b32 %r<16>;\n.reg .b64 %rd<8>;\n\
         ld.param.u64 %rd1, [out];\n mov.u32 %r1, %laneid;\n{body}\n\
         mul.wide.u32 %rd2, %r1, 4;\n add.s64 %rd3, %rd1, %rd2;\n st.global.u32 [%rd3], %r2;\nret;\n}}\n"
    );
    let emu = Emulator::new();
    let m = emu.load(&ptx);
    let out = emu.upload(&[0u32; 32]);
    emu.launch(&m, "k", [1, 1, 1], [32, 1, 1], 0, &[Arg::Ptr(out)])
        .unwrap_or_else(|f| panic!("{f}"));
    emu.download(out, 32)
}

#[test]
fn shuffles_follow_their_clamp_and_segment_mask() {
    let value = |l: u32| l * 10;
    // up by 2 within segments of 8 lanes (c = 0x1800: segmask 0b11000, clamp 0): the first two
    // lanes of each segment keep their own value
    let got = run_warp("mul.lo.u32 %r3, %r1, 10;\n shfl.sync.up.b32 %r2, %r3, 2, 0x1800, -1;");
    let want: Vec<u32> = (0..32)
        .map(|l| if l % 8 < 2 { value(l) } else { value(l - 2) })
        .collect();
    assert_eq!(got, want, "up");
    // down by 3 with clamp 31: the last three lanes keep their own
    let got = run_warp("mul.lo.u32 %r3, %r1, 10;\n shfl.sync.down.b32 %r2, %r3, 3, 31, -1;");
    let want: Vec<u32> = (0..32)
        .map(|l| if l + 3 > 31 { value(l) } else { value(l + 3) })
        .collect();
    assert_eq!(got, want, "down");
    // idx 5 within segments of 16 (c = 0x101f): each half reads its own lane 5
    let got = run_warp("mul.lo.u32 %r3, %r1, 10;\n shfl.sync.idx.b32 %r2, %r3, 5, 0x101f, -1;");
    let want: Vec<u32> = (0..32).map(|l| value((l & 16) | 5)).collect();
    assert_eq!(got, want, "idx");
    // the predicate says whether the source was in range
    let got =
        run_warp("mul.lo.u32 %r3, %r1, 10;\n shfl.sync.down.b32 %r4|%p1, %r3, 4, 31, -1;\n selp.u32 %r2, 1, 0, %p1;");
    let want: Vec<u32> = (0..32).map(|l| u32::from(l + 4 <= 31)).collect();
    assert_eq!(got, want, "predicate");
}

#[test]
fn votes_and_ballots_over_the_warp() {
    let got = run_warp("and.b32 %r3, %r1, 3;\n setp.eq.u32 %p1, %r3, 0;\n vote.sync.ballot.b32 %r2, %p1, -1;");
    assert_eq!(got, vec![0x1111_1111; 32], "ballot of lanes ≡ 0 mod 4");
    let got = run_warp("setp.lt.u32 %p1, %r1, 32;\n vote.sync.all.pred %p2, %p1, -1;\n selp.u32 %r2, 1, 0, %p2;");
    assert_eq!(got, vec![1; 32], "all");
    let got = run_warp("setp.eq.u32 %p1, %r1, 31;\n vote.sync.any.pred %p2, %p1, -1;\n vote.sync.uni.pred %p3, %p1, -1;\n selp.u32 %r4, 1, 0, %p2;\n selp.u32 %r5, 2, 0, %p3;\n or.b32 %r2, %r4, %r5;");
    assert_eq!(got, vec![1; 32], "any but not uniform");
}
