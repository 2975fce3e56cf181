//! Placeholder until the mma module lands.
pub fn m16n8k8_tf32(a: &[[u32; 4]; 32], b: &[[u32; 2]; 32], c: &[[f32; 4]; 32]) -> [[f32; 4]; 32] {
    let _ = (a, b, c);
    unimplemented!()
}
pub fn m16n8k16_bf16(a: &[[u32; 4]; 32], b: &[[u32; 2]; 32], c: &[[f32; 4]; 32]) -> [[f32; 4]; 32] {
    let _ = (a, b, c);
    unimplemented!()
}
pub fn sp_m16n8k32_bf16(
    a: &[[u32; 4]; 32],
    b: &[[u32; 4]; 32],
    c: &[[f32; 4]; 32],
    e: &[u32; 32],
    s: u32,
) -> Result<[[f32; 4]; 32], String> {
    let _ = (a, b, c, e, s);
    unimplemented!()
}
