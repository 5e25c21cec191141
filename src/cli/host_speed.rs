//! How fast this machine's CPU cores multiply-add right now, so that timings taken through a
//! software adapter (lavapipe) can be compared across machines and across days.
//!
//! Why: lavapipe's speed depends on the host as much as on our shaders. The same 2-core machine
//! type, with the same FMA rate per core (about 85 GFLOP/s), ran the DCGAN iteration 4x slower
//! on a day its hypervisor hid AVX-512 (llvmpipe's lane-varying loads become scalar loops
//! without it). A benchmark that prints the host's rate and vector extensions next to its
//! iteration time makes such a host visible instead of looking like a regression.

use std::time::Instant;

/// Independent accumulator chains: enough to cover the FMA latency (4 cycles) on two FMA units.
const CHAINS: usize = 8;
/// f32 lanes per chain (one 256-bit register on x86-64).
const LANES: usize = 8;
const MUL: f32 = 0.999_9;
const ADD: f32 = 1.0e-4;

/// One core's measured multiply-add rate, and what all cores reach together.
#[derive(Debug, Clone)]
pub struct HostSpeed {
    /// Multiply-adds per second of one core, in GFLOP/s.
    pub per_core_gflops: f64,
    /// Of all cores together.
    pub all_cores_gflops: f64,
    /// Threads the measurement used.
    pub threads: usize,
    /// "256-bit FMA" or "scalar" (where AVX2+FMA is not available).
    pub path: &'static str,
    /// The vector extensions llvmpipe's code generation depends on, e.g. "AVX2 FMA AVX-512F".
    pub extensions: String,
}

/// Runs the probe for about `seconds` on one core, then on every core at once.
pub fn measure(seconds: f64) -> HostSpeed {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let (path, _) = fma_chains(1_000);
    let per_core = rate(seconds);
    let all: f64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| rate(seconds))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    });
    HostSpeed { per_core_gflops: per_core, all_cores_gflops: all, threads, path, extensions: extensions() }
}

/// The x86 vector extensions present, or the architecture's name elsewhere.
pub fn extensions() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let found = [
            ("AVX2", is_x86_feature_detected!("avx2")),
            ("FMA", is_x86_feature_detected!("fma")),
            ("AVX-512F", is_x86_feature_detected!("avx512f")),
        ];
        let names: Vec<&str> = found.iter().filter(|f| f.1).map(|f| f.0).collect();
        let mut out = if names.is_empty() { "SSE2 only".to_string() } else { names.join(" ") };
        if !is_x86_feature_detected!("avx512f") {
            out.push_str(", no AVX-512");
        }
        out
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

impl std::fmt::Display for HostSpeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} GFLOP/s per core, {:.1} on all {} ({} loop); {} (lavapipe timings compare only\n                    between hosts with similar figures and extensions)",
            self.per_core_gflops, self.all_cores_gflops, self.threads, self.path, self.extensions
        )
    }
}

/// GFLOP/s of the FMA loop on the calling thread, timed over about `seconds`.
fn rate(seconds: f64) -> f64 {
    let mut rounds = 10_000u64;
    loop {
        let t = Instant::now();
        std::hint::black_box(fma_chains(rounds));
        let dt = t.elapsed().as_secs_f64();
        if dt >= seconds || rounds > 1 << 40 {
            return flops(rounds) / dt / 1e9;
        }
        rounds = (rounds as f64 * (seconds / dt.max(1e-6)).min(100.0) * 1.1) as u64;
    }
}

fn flops(rounds: u64) -> f64 {
    (rounds * (CHAINS * LANES * 2) as u64) as f64
}

/// `rounds` steps of x <- x * MUL + ADD on CHAINS x LANES values; returns the path taken and the
/// sum of the final values (which the caller checks, so the work cannot be optimised away).
pub fn fma_chains(rounds: u64) -> (&'static str, f64) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the features the function is compiled for were detected at run time.
            return ("256-bit FMA", unsafe { fma_chains_avx2(rounds) });
        }
    }
    ("scalar", fma_chains_scalar(rounds))
}

fn start_value(chain: usize, lane: usize) -> f32 {
    (chain * LANES + lane) as f32 * 1.0e-3
}

fn fma_chains_scalar(rounds: u64) -> f64 {
    let mut acc = [[0f32; LANES]; CHAINS];
    for (c, chain) in acc.iter_mut().enumerate() {
        for (l, v) in chain.iter_mut().enumerate() {
            *v = start_value(c, l);
        }
    }
    for _ in 0..rounds {
        for chain in acc.iter_mut() {
            for v in chain.iter_mut() {
                *v = v.mul_add(MUL, ADD);
            }
        }
    }
    acc.iter().flatten().map(|&v| v as f64).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_chains_avx2(rounds: u64) -> f64 {
    use std::arch::x86_64::*;
    let mul = _mm256_set1_ps(MUL);
    let add = _mm256_set1_ps(ADD);
    let mut acc = [_mm256_setzero_ps(); CHAINS];
    for (c, a) in acc.iter_mut().enumerate() {
        let mut start = [0f32; LANES];
        for (l, v) in start.iter_mut().enumerate() {
            *v = start_value(c, l);
        }
        *a = _mm256_loadu_ps(start.as_ptr());
    }
    for _ in 0..rounds {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, mul, add);
        }
    }
    let mut sum = 0.0;
    for a in acc {
        let mut out = [0f32; LANES];
        _mm256_storeu_ps(out.as_mut_ptr(), a);
        sum += out.iter().map(|&v| v as f64).sum::<f64>();
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loop's result against the recurrence's closed form in f64:
    /// x_n = MUL^n x_0 + ADD (1 - MUL^n) / (1 - MUL).
    #[test]
    fn fma_loop_computes_the_recurrence() {
        let rounds = 5_000u64;
        let (_, got) = fma_chains(rounds);
        let (m, a) = (MUL as f64, ADD as f64);
        let mn = m.powi(rounds as i32);
        let expected: f64 = (0..CHAINS * LANES)
            .map(|i| mn * start_value(i / LANES, i % LANES) as f64 + a * (1.0 - mn) / (1.0 - m))
            .sum();
        let tol = 1e-3 * expected.abs() + 1e-3;
        assert!((got - expected).abs() <= tol, "fma loop sum {got}, closed form {expected}");
        assert!((fma_chains_scalar(rounds) - expected).abs() <= tol);
    }

    #[test]
    fn measured_rates_are_positive() {
        let s = measure(0.02);
        assert!(s.per_core_gflops.is_finite() && s.per_core_gflops > 0.0, "{s:?}");
        assert!(s.all_cores_gflops.is_finite() && s.all_cores_gflops > 0.0, "{s:?}");
        assert!(s.threads >= 1);
        assert!(!s.extensions.is_empty());
    }
}
