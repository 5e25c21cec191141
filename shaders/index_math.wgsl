// Index arithmetic shared by shaders (the registry appends this file to those that use it).

// n / d for n < 2^24, exactly: f32 holds n, and the rounded quotient is within one of the true
// one. (llvmpipe has no vector integer division: a u32 `/` or `%` runs once per lane.)
fn quot(n: u32, d: u32) -> u32 {
    var q = u32(f32(n) / f32(d));
    let r = i32(n) - i32(q * d);
    q = select(q, q - 1u, r < 0);
    return select(q, q + 1u, r >= i32(d));
}
