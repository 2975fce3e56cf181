//! Compressed conv weights, as every backend stores them (the host copies defined here are the
//! reference layout; a device backend holds the same arrays in device memory).
//!
//! A conv weight is `w: [c_out, c_in, kt]`, read as a matrix of `c_out` rows and `K = c_in·kt`
//! columns, column `i·kt + k` being tap `k` of input channel `i`.
//!
//! - [`CsrWeight`]: the kept entries of an unstructured mask (kept where `mask ≠ 0`), as CSR over the
//!   output channels (the forward) and, built at the same conversion, CSR over the input channels
//!   (the input gradient `dx = Wᵀ·dy` as a gather, so no two threads ever add into the same
//!   element and sums run in a fixed order). Entries of a row are in ascending column order.
//! - [`Packed24Weight`]: 2:4 semi-structured sparsity for `mma.sp` with bf16 operands: along each
//!   row, every group of 4 consecutive columns keeps at most 2 weights; the row is padded with
//!   zero columns to a multiple of 32 (one `m16n8k32` step), and each group stores exactly 2 bf16
//!   values and their 2-bit positions.

/// One CSR matrix of a conv weight's kept entries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Csr<T> {
    /// `[rows + 1]`: entries of row `r` are `row_ptr[r]..row_ptr[r + 1]`.
    pub row_ptr: Vec<u32>,
    /// `[nnz]`: packed column `a·kt + k`, `a` being the other channel (input channel `i` in the CSR
    /// over output channels, output channel `o` in the one over input channels), `k` the tap.
    pub col: Vec<u32>,
    /// `[nnz]`: flat index of the entry in `w` (`o·c_in·kt + i·kt + k`), to refresh `values` from a
    /// new `w` without rebuilding the pattern.
    pub src: Vec<u32>,
    /// `[nnz]`: `w[src]`.
    pub values: Vec<T>,
}

/// A conv weight compressed to the entries its mask keeps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsrWeight<T> {
    pub c_out: usize,
    pub c_in: usize,
    pub kt: usize,
    /// `c_out` rows; row `o` holds the kept `(i, k)` of `w[o, i, k]`.
    pub by_output: Csr<T>,
    /// `c_in` rows; row `i` holds the kept `(o, k)` of `w[o, i, k]`.
    pub by_input: Csr<T>,
}

impl<T: Copy + Default> CsrWeight<T> {
    /// Number of kept entries.
    pub fn nnz(&self) -> usize {
        self.by_output.values.len()
    }

    /// `w ⊙ M` as a dense `[c_out, c_in, kt]` weight (zeros where the mask drops).
    pub fn to_dense(&self) -> Vec<T> {
        let mut w = vec![T::default(); self.c_out * self.c_in * self.kt];
        for (&s, &v) in self.by_output.src.iter().zip(&self.by_output.values) {
            w[s as usize] = v;
        }
        w
    }
}

/// Columns of a 2:4 row after padding: `K = c_in·kt` rounded up to a multiple of 32.
pub fn padded_columns(c_in: usize, kt: usize) -> usize {
    (c_in * kt).div_ceil(32) * 32
}

/// The error for a mask that keeps more than 2 of the 4 weights of group `group` (columns
/// `4·group..4·group+4` along `c_in·kt`) of output channel `o`.
pub fn not_2_4_error(o: usize, group: usize) -> crate::Error {
    crate::Error::config(format!(
        "2:4 packing: output channel {o} keeps more than 2 of the weights {}..{} along c_in·kt (at most 2 of every 4; prune with prune_2_4)",
        4 * group,
        4 * group + 4
    ))
}

/// The metadata nibble of a group whose two stored values sit at positions `first < second`
/// (0..4) of the group: `first | second << 2` (PTX's 2-bit indices, ordered as
/// `mma.sp::ordered_metadata` requires).
pub fn nibble(first: u32, second: u32) -> u16 {
    (first | second << 2) as u16
}

/// A `[c_out, c_in, kt]` weight pruned to 2:4 along `c_in·kt` and packed for `mma.sp` (m16n8k32,
/// bf16): per row `k_padded/2` bf16 values and `k_padded/16` metadata words.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Packed24Weight {
    pub c_out: usize,
    pub c_in: usize,
    pub kt: usize,
    /// [`padded_columns`]: `c_in·kt` rounded up to a multiple of 32.
    pub k_padded: usize,
    /// `[c_out, k_padded/2]` bf16 bits: group `g` (columns `4g..4g+4`) stores its two values at
    /// `2g` and `2g + 1`, in the order of their positions; a group keeping fewer than 2 weights
    /// (or a padding group) stores zeros at unused positions.
    pub values: Vec<u16>,
    /// `[c_out, k_padded/16]`: word `c` of a row describes columns `16c..16c+16` (groups
    /// `4c..4c+4`); bits `4j..4j+4` are the [`nibble`] of group `4c + j`. In the kernel a thread
    /// holds the words of rows `r` (low half) and `r + 8` (high half) of one 16-column chunk, the
    /// layout of PTX's metadata operand for `m16n8k32` with 16-bit types and sparsity selector 0.
    pub meta: Vec<u16>,
}

impl Packed24Weight {
    /// The weight the packed form represents, as a dense `[c_out, c_in, kt]` array of bf16 values
    /// widened to f32 (pruned weights are 0).
    pub fn to_dense(&self) -> Vec<f32> {
        let k = self.c_in * self.kt;
        let mut w = vec![0.0; self.c_out * k];
        for o in 0..self.c_out {
            for g in 0..k.div_ceil(4) {
                let word = self.meta[o * self.k_padded / 16 + g / 4];
                let bits = u32::from(word >> (4 * (g % 4))) & 0xf;
                for (slot, pos) in [(0, bits & 3), (1, bits >> 2)] {
                    let col = 4 * g + pos as usize;
                    if col < k {
                        w[o * k + col] = bf16_to_f32(self.values[o * self.k_padded / 2 + 2 * g + slot]);
                    }
                }
            }
        }
        w
    }
}

/// `x` rounded to the nearest bf16 (ties to even), as bits: what `__float2bfloat16_rn` gives.
pub fn f32_to_bf16(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

/// A bf16 value widened to f32 (exact).
pub fn bf16_to_f32(bits: u16) -> f32 {
    half::bf16::from_bits(bits).to_f32()
}
