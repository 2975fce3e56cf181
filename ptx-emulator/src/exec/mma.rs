//! Warp-level matrix multiply-accumulate (`mma.sync`, `mma.sp`): each function takes every lane's
//! source registers and returns every lane's destination registers.
//!
//! Fragment layouts are those of the PTX ISA 8.x text (later releases renumber 9.7.14 as 9.7.15):
//! - 9.7.14.5.7 "Matrix Fragments for mma.m16n8k8" (`.tf32` A, B and `.f32` C/D);
//! - 9.7.14.5.8 "Matrix Fragments for mma.m16n8k16 with floating point type" (`.bf16` A, B, C/D);
//! - 9.7.14.6.1 "Sparse matrix storage" and 9.7.14.6.2.2 "Matrix Fragments for sparse mma.m16n8k32
//!   with .f16 and .bf16 types" (sparse A, B and the metadata), 9.7.14.6.3 "mma.sp".
//!
//! In those tables `groupID = %laneid >> 2` and `threadID_in_group = %laneid % 4`, and a register
//! holding two 16-bit elements holds them "low to high": the first element (`a0`, `b0`, ...) in
//! bits 15:0.
//!
//! Arithmetic. The ISA leaves the accumulation order, its rounding and the treatment of subnormal
//! inputs unspecified ("Element-wise multiplication of matrix A and B is performed with specified
//! precision. Accumulation of the intermediate values is performed with at least single
//! precision."). Our documented choice: every product is exact (a `.tf32`×`.tf32` or
//! `.bf16`×`.bf16` product fits an f64, where it is computed), and `D[i][j]` is
//! `C[i][j] + Σ_k A[i][k]·B[k][j]` summed in f64 in ascending `k` starting from `C[i][j]`, then
//! rounded once to f32 (to nearest even); subnormal inputs are kept; NaN and infinities propagate
//! as IEEE arithmetic gives, a NaN result being the canonical `.f32` NaN.
//!
//! `.tf32` operands: 5.2.3 "Alternate Floating-Point Data Formats" gives `.tf32` the range of
//! `.f32` with at least 10 bits of precision and an implementation-defined layout in a `.b32`
//! register; `cvt.rna.tf32.f32` produces an `.f32` bit pattern with the low 13 bits zero. We read
//! an operand as that pattern and ignore (truncate) its low 13 bits, as the hardware does.

use std::fmt;

use super::numerics::CANONICAL_NAN_F32;

/// A source operand the ISA forbids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmaError {
    /// The sparsity selector of `mma.sp.m16n8k32` must be 0 (threads T0, T1 of each group of four
    /// give the metadata) or 1 (T2, T3) (9.7.14.6.1).
    SparsitySelector(u32),
    /// A 4-bit metadata index pair that `mma.sp::ordered_metadata` forbids: its two indices must
    /// increase from the LSB (`0b0100, 0b1000, 0b1001, 0b1100, 0b1101, 0b1110`; 9.7.14.6.1,
    /// 9.7.14.6.3). `lane` gave the metadata, `nibble` is the pair's position (bits
    /// `4·nibble+3 .. 4·nibble`).
    Metadata { lane: usize, nibble: u32, value: u32 },
}

impl fmt::Display for MmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MmaError::SparsitySelector(s) => {
                write!(f, "mma.sp.m16n8k32: sparsity selector {s} (must be 0 or 1)")
            }
            MmaError::Metadata { lane, nibble, value } => write!(
                f,
                "mma.sp::ordered_metadata: lane {lane}'s metadata bits {}..{} are {value:#06b}, not two \
                 indices increasing from the LSB",
                4 * nibble + 3,
                4 * nibble
            ),
        }
    }
}

impl std::error::Error for MmaError {}

/// A `.tf32` operand: the `.f32` pattern with its low 13 bits ignored.
#[inline]
fn tf32(bits: u32) -> f64 {
    f32::from_bits(bits & 0xffff_e000) as f64
}

/// A `.bf16` element: the upper half of an `.f32`.
#[inline]
fn bf16(bits: u32) -> f64 {
    f32::from_bits(bits << 16) as f64
}

/// The two `.bf16` elements of a register, low half first.
#[inline]
fn bf16_pair(reg: u32) -> [f64; 2] {
    [bf16(reg & 0xffff), bf16(reg >> 16)]
}

/// `D = A·B + C` on row-major `a` (16×K), `b` (K×8) and `c` (16×8), by the module's accumulation
/// rule: in f64, ascending `k`, from `C`, rounded once to f32. The inner loop runs over the 8
/// columns, which the compiler vectorises without reordering any element's sum.
/// Compiled for AVX2 where the host has it (the baseline build targets SSE2 only): the same
/// operations in the same order, on wider vectors (Rust never contracts a multiply and an add).
#[inline]
fn multiply<const K: usize>(a: &[[f64; K]; 16], b: &[[f64; 8]; K], c: &[[f32; 8]; 16]) -> [[f32; 8]; 16] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        unsafe fn wide<const K: usize>(a: &[[f64; K]; 16], b: &[[f64; 8]; K], c: &[[f32; 8]; 16]) -> [[f32; 8]; 16] {
            multiply_in_order(a, b, c)
        }
        // SAFETY: the CPU has AVX2 (checked above).
        return unsafe { wide(a, b, c) };
    }
    multiply_in_order(a, b, c)
}

#[inline(always)]
fn multiply_in_order<const K: usize>(a: &[[f64; K]; 16], b: &[[f64; 8]; K], c: &[[f32; 8]; 16]) -> [[f32; 8]; 16] {
    let mut d = [[0f32; 8]; 16];
    for i in 0..16 {
        let mut acc = c[i].map(f64::from);
        for k in 0..K {
            let aik = a[i][k];
            for j in 0..8 {
                acc[j] += aik * b[k][j];
            }
        }
        d[i] = acc.map(|v| {
            let v = v as f32;
            if v.is_nan() {
                f32::from_bits(CANONICAL_NAN_F32)
            } else {
                v
            }
        });
    }
    d
}

/// The `.f32` C fragments of m16n8k8 and m16n8k16 (Figures 77 and 83, the same layout) gathered
/// into a 16×8 matrix: `c0, c1` at row `groupID`, `c2, c3` at row `groupID + 8`, column
/// `threadID_in_group * 2 + (i & 1)`.
#[inline]
fn gather_c(c: &[[f32; 4]; 32]) -> [[f32; 8]; 16] {
    let mut m = [[0f32; 8]; 16];
    for (lane, regs) in c.iter().enumerate() {
        let (g, t) = (lane >> 2, lane & 3);
        m[g][2 * t] = regs[0];
        m[g][2 * t + 1] = regs[1];
        m[g + 8][2 * t] = regs[2];
        m[g + 8][2 * t + 1] = regs[3];
    }
    m
}

/// The 16×8 D matrix scattered into the C/D fragment layout (the inverse of [`gather_c`]).
#[inline]
fn scatter_d(d: &[[f32; 8]; 16]) -> [[f32; 4]; 32] {
    let mut out = [[0f32; 4]; 32];
    for (lane, regs) in out.iter_mut().enumerate() {
        let (g, t) = (lane >> 2, lane & 3);
        *regs = [d[g][2 * t], d[g][2 * t + 1], d[g + 8][2 * t], d[g + 8][2 * t + 1]];
    }
    out
}

/// `mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 d, a, b, c` (9.7.14.5.7):
/// - A (16×8, Figure 72), four `.b32` per lane: `a0` (row `groupID`, col `threadID_in_group`),
///   `a1` (row `groupID + 8`, same col), `a2` (row `groupID`, col `threadID_in_group + 4`), `a3`
///   (row `groupID + 8`, col `threadID_in_group + 4`);
/// - B (8×8, Figure 75), two `.b32` per lane: `b0` (row `threadID_in_group`), `b1` (row
///   `threadID_in_group + 4`), both in column `groupID`;
/// - C, D (16×8, Figure 77): see [`gather_c`].
pub fn mma_m16n8k8_tf32(a: &[[u32; 4]; 32], b: &[[u32; 2]; 32], c: &[[f32; 4]; 32]) -> [[f32; 4]; 32] {
    let mut am = [[0f64; 8]; 16];
    let mut bm = [[0f64; 8]; 8];
    for lane in 0..32 {
        let (g, t) = (lane >> 2, lane & 3);
        let ar = &a[lane];
        am[g][t] = tf32(ar[0]);
        am[g + 8][t] = tf32(ar[1]);
        am[g][t + 4] = tf32(ar[2]);
        am[g + 8][t + 4] = tf32(ar[3]);
        bm[t][g] = tf32(b[lane][0]);
        bm[t + 4][g] = tf32(b[lane][1]);
    }
    scatter_d(&multiply(&am, &bm, &gather_c(c)))
}

/// `mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 d, a, b, c` (9.7.14.5.8), each `.b32`
/// holding two `.bf16`, the lower-numbered element in bits 15:0:
/// - A (16×16, Figure 79), four registers per lane holding `a0..a7`: row `groupID` for `a0, a1,
///   a4, a5` and `groupID + 8` for the rest; column `threadID_in_group * 2 + (i & 1)`, plus 8 for
///   `i >= 4`;
/// - B (16×8, Figure 81), two registers holding `b0..b3`: row `threadID_in_group * 2 + (i & 1)`,
///   plus 8 for `i >= 2`; column `groupID`;
/// - C, D (16×8, Figure 83): see [`gather_c`].
pub fn mma_m16n8k16_bf16(a: &[[u32; 4]; 32], b: &[[u32; 2]; 32], c: &[[f32; 4]; 32]) -> [[f32; 4]; 32] {
    let mut am = [[0f64; 16]; 16];
    let mut bm = [[0f64; 8]; 16];
    for lane in 0..32 {
        let (g, t) = (lane >> 2, lane & 3);
        for (r, &reg) in a[lane].iter().enumerate() {
            // Register r holds a(2r), a(2r+1): row g (+8 for odd r), columns 2t, 2t+1 (+8 for r >= 2).
            let row = g + 8 * (r & 1);
            let col = 2 * t + 8 * (r >> 1);
            [am[row][col], am[row][col + 1]] = bf16_pair(reg);
        }
        for (r, &reg) in b[lane].iter().enumerate() {
            let [lo, hi] = bf16_pair(reg);
            bm[2 * t + 8 * r][g] = lo;
            bm[2 * t + 8 * r + 1][g] = hi;
        }
    }
    scatter_d(&multiply(&am, &bm, &gather_c(c)))
}

/// `mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.bf16.bf16.f32 d, a, b, c, e, f`
/// (9.7.14.6.3), A 16×32 structured sparse at 2:4 (9.7.14.6.1): each 4-wide chunk of a row of A
/// holds two nonzeros, stored in A's registers, and two 2-bit indices in the metadata `e` giving
/// their columns within the chunk, the first (lower) index in the lower two bits.
///
/// - A (9.7.14.6.2.2, Figure 120), four `.b32` per lane, each holding the two nonzeros of one
///   chunk, low half first: register 0 row `groupID`, register 1 row `groupID + 8`, both from the
///   chunk at columns `threadID_in_group * 4 ..+3`; registers 2 and 3 likewise from the chunk 16
///   columns further.
/// - B (32×8, Figure 121), four `.b32` per lane holding `b0..b7`: register `r` holds rows
///   `8r + threadID_in_group * 2 + {0, 1}` of column `groupID`. The text gives Figure 121 as an
///   image only, with no formula; we take it as m16n8k16's B layout (Figure 81) continued to four
///   registers, each covering the next 8 rows of K, which is how public kernels that check this
///   instruction against a CPU product load B.
/// - C, D: those of m16n8k16 (Figure 83).
/// - Metadata (Figure 122, "a .b32 register containing 16 2-bit vectors"): with sparsity selector
///   `f` (0: threads T0, T1 of each group of four; 1: T2, T3), lane `4·groupID + 2·f + h` holds
///   the metadata of columns `16h ..16h+15`: bits 15:0 for row `groupID`, bits 31:16 for row
///   `groupID + 8`, nibble `j` of each half for the chunk at columns `16h + 4j ..+3`. Figure 122
///   is also an image; this reading fits the text's bit count and thread pairs, and is the
///   metadata layout of public code generators and kernels whose results were checked on
///   hardware.
///
/// Errors: a selector other than 0 or 1, or, in a lane the selector names, an index pair that is
/// not increasing (the values `ordered_metadata` leaves undefined).
pub fn mma_sp_m16n8k32_bf16(
    a: &[[u32; 4]; 32],
    b: &[[u32; 4]; 32],
    c: &[[f32; 4]; 32],
    e: &[u32; 32],
    selector: u32,
) -> Result<[[f32; 4]; 32], MmaError> {
    if selector > 1 {
        return Err(MmaError::SparsitySelector(selector));
    }
    let sel = selector as usize;
    let mut am = [[0f64; 32]; 16];
    let mut bm = [[0f64; 8]; 32];
    for lane in 0..32 {
        let (g, t) = (lane >> 2, lane & 3);
        for (r, &reg) in b[lane].iter().enumerate() {
            let [lo, hi] = bf16_pair(reg);
            bm[8 * r + 2 * t][g] = lo;
            bm[8 * r + 2 * t + 1][g] = hi;
        }
        for (r, &reg) in a[lane].iter().enumerate() {
            let row = g + 8 * (r & 1);
            let chunk = t + 4 * (r >> 1);
            // The metadata of this chunk: lane 4g + 2·sel + chunk/4, nibble chunk % 4 of the half
            // for this row.
            let meta_lane = 4 * g + 2 * sel + chunk / 4;
            let nibble = (4 * (r & 1) + (chunk & 3)) as u32;
            let m = (e[meta_lane] >> (4 * nibble)) & 0xf;
            let (i0, i1) = ((m & 3) as usize, (m >> 2) as usize);
            if i0 >= i1 {
                return Err(MmaError::Metadata {
                    lane: meta_lane,
                    nibble,
                    value: m,
                });
            }
            let [lo, hi] = bf16_pair(reg);
            am[row][4 * chunk + i0] = lo;
            am[row][4 * chunk + i1] = hi;
        }
    }
    Ok(scatter_d(&multiply(&am, &bm, &gather_c(c))))
}
