//! Comparisons with the references, shared by the native tests (tests/common) and the browser
//! tests (web/tests/browser.rs): plain Rust, no device.

/// |got - want| <= atol + rtol * |want| elementwise; on failure lists the first mismatches.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: {} values, expected {}", got.len(), want.len());
    let bad: Vec<(usize, f32, f64)> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (&g, &w))| {
            let off = (g as f64 - w).abs();
            off.is_nan() || off > atol + rtol * w.abs()
        })
        .map(|(i, (&g, &w))| (i, g, w))
        .collect();
    if !bad.is_empty() {
        let shown: Vec<String> = bad.iter().take(8).map(|(i, g, w)| format!("[{i}] got {g} want {w}")).collect();
        panic!(
            "{what}: {} of {} values differ (rtol {rtol}, atol {atol}); first: {}",
            bad.len(),
            got.len(),
            shown.join(", ")
        );
    }
}

/// Central finite differences in f64 of a scalar function at `x`.
pub fn finite_diff(x: &[f64], f: impl Fn(&[f64]) -> f64, h: f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = xp[i];
            xp[i] = orig + h;
            let up = f(&xp);
            xp[i] = orig - h;
            let down = f(&xp);
            xp[i] = orig;
            (up - down) / (2.0 * h)
        })
        .collect()
}
