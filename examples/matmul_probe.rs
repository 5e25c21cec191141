//! Device time of the matrix products that dominate the DCGAN-32 width-64 step, one shape at a
//! time, so a change to the matmul kernel can be judged without the noise of a whole step.
//!
//!     cargo run --release --example matmul_probe [rounds]
//!
//! Each shape (batch x M x K x N, A or B transposed as in the step's profile) runs `rounds`
//! times (default 7) on fresh random operands; the kernel's own time comes from the device
//! timestamps around its dispatch (texture copies of the operands excluded) and the median is
//! printed with the spread. Compare two builds by running their probes one after the other,
//! twice, on a quiet machine.

use rand::{Rng, SeedableRng};
use shadergan::{Gpu, GpuOptions, Tensor};

/// (M, K, N, A transposed, B transposed): the products of the width-64 step that take 80% of
/// its matmul time (`SHADERGAN_PROFILE_DETAIL=1 shadergan bench --width 64`).
const SHAPES: [(usize, usize, usize, bool, bool); 6] = [
    (128, 1024, 4096, false, false),
    (256, 2048, 1024, false, false),
    (1024, 128, 4096, true, false),
    (256, 1024, 2048, false, true),
    (2048, 256, 1024, true, false),
    (128, 4096, 1024, false, true),
];

fn main() {
    let rounds: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 7,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: matmul_probe [rounds > 0]");
            std::process::exit(2);
        }
    };
    let gpu = match Gpu::new(&GpuOptions::from_env()) {
        Ok(gpu) => gpu,
        Err(e) => {
            eprintln!("no device: {e:#} (bash scripts/setup.sh installs lavapipe)");
            std::process::exit(1);
        }
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut total = 0.0;
    println!("{:<28} {:>10} {:>18} {:>9}", "product (M x K x N, t)", "median", "min-max", "GFLOP/s");
    for (m, k, n, ta, tb) in SHAPES {
        let mut random = |len: usize| (0..len).map(|_| rng.random_range(-1.0..1.0)).collect::<Vec<f32>>();
        let a_shape = if ta { [k, m] } else { [m, k] };
        let b_shape = if tb { [n, k] } else { [k, n] };
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..=rounds {
            let a = Tensor::from_vec(&gpu, &a_shape, &random(m * k));
            let b = Tensor::from_vec(&gpu, &b_shape, &random(k * n));
            gpu.profile_start();
            let c = a.matmul_t(&b, ta, tb);
            gpu.synchronize();
            let seconds: f64 = gpu.profile_report().iter().filter(|r| r.0.starts_with("matmul")).map(|r| r.2).sum();
            drop(c);
            times.push(seconds);
        }
        // The first round compiles the pipeline and warms the caches.
        let mut times = times.split_off(1);
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        total += median;
        let gflops = 2.0 * (m * k * n) as f64 / median / 1e9;
        println!(
            "{:<28} {:>8.1}ms {:>8.1}-{:<8.1}ms {:>8.1}",
            format!("{m}x{k}x{n} t{}{}", ta as u8, tb as u8),
            median * 1e3,
            times[0] * 1e3,
            times[times.len() - 1] * 1e3,
            gflops
        );
    }
    println!("sum of medians: {:.1} ms", total * 1e3);
}
