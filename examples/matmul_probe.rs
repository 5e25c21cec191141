//! Device time of the matrix products that dominate the DCGAN-32 width-64 step, one product at
//! a time, so a change to the matmul kernel can be judged without the noise of a whole step.
//!
//!     cargo run --release --example matmul_probe [rounds]
//!
//! The step's products are its convolutions run as implicit GEMM (matmul_subgroup.wgsl with
//! matmul_conv.wgsl): the discriminator's 4x4 stride-2 convolutions forward (B_MODE 6), their
//! input gradients, which are the generator's transposed convolutions too (by output phase,
//! B_MODE 5), and their weight gradients (A_MODE 3). Each runs `rounds` times (default 7) on
//! fresh random operands; the kernel's own time comes from the device timestamps around its
//! dispatch (texture copies and the small passes around it excluded) and the median is printed
//! with the spread. Compare two builds by running their probes one after the other, twice, on a
//! quiet machine.

use rand::{Rng, SeedableRng};
use shadergan::{grad_with, Gpu, GpuOptions, GradOptions, Tensor};

#[derive(Clone, Copy)]
enum Product {
    /// conv2d(x, w), stride 2, padding 1.
    Conv,
    /// conv_transpose2d(x, w), stride 2, padding 1.
    ConvTranspose,
    /// The weight gradient of conv2d(x, w).
    WeightGrad,
}

/// (product, input shape, weight shape): the width-64 step's layers at batch 64.
const PRODUCTS: [(Product, [usize; 4], [usize; 4]); 6] = [
    (Product::Conv, [64, 64, 16, 16], [128, 64, 4, 4]),
    (Product::Conv, [64, 128, 8, 8], [256, 128, 4, 4]),
    (Product::ConvTranspose, [64, 128, 8, 8], [128, 64, 4, 4]),
    (Product::ConvTranspose, [64, 256, 4, 4], [256, 128, 4, 4]),
    (Product::WeightGrad, [64, 64, 16, 16], [128, 64, 4, 4]),
    (Product::WeightGrad, [64, 128, 8, 8], [256, 128, 4, 4]),
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
    println!("{:<48} {:>10} {:>18} {:>9}", "product (as the profile names it)", "median", "min-max", "GFLOP/s");
    for (product, xs, ws) in PRODUCTS {
        let mut random = |shape: &[usize]| {
            let data: Vec<f32> = (0..shape.iter().product()).map(|_| rng.random_range(-1.0..1.0)).collect();
            Tensor::from_vec(&gpu, shape, &data)
        };
        let mut times = Vec::with_capacity(rounds);
        let mut name = String::new();
        for _ in 0..=rounds {
            let (x, w) = (random(&xs), random(&ws).requires_grad());
            // The weight gradient's upstream gradient, made before the timing starts.
            let y = matches!(product, Product::WeightGrad).then(|| x.conv2d(&w, 2, 1));
            let seed = y.as_ref().map(|y| random(y.shape()));
            gpu.synchronize();
            gpu.profile_start();
            let out = match product {
                Product::Conv => x.conv2d(&w, 2, 1),
                Product::ConvTranspose => x.conv_transpose2d(&w, 2, 1, 0),
                Product::WeightGrad => {
                    let seeded = GradOptions::default().seed(seed.as_ref().unwrap());
                    grad_with(y.as_ref().unwrap(), &[&w], seeded).remove(0)
                }
            };
            gpu.synchronize();
            let report = gpu.profile_report();
            let products: Vec<_> = report.iter().filter(|r| r.0.starts_with("matmul")).collect();
            name = products.iter().map(|r| r.0.split(']').nth(1).unwrap_or("").trim().to_string()).collect();
            times.push(products.iter().map(|r| r.2).sum::<f64>());
            drop(out);
        }
        // The first round compiles the pipeline and warms the caches.
        let mut times = times.split_off(1);
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        total += median;
        let (c_out, c_in, k) = (ws[0], ws[1], ws[2] * ws[3]);
        let conv_positions = match product {
            Product::ConvTranspose => xs[0] * xs[2] * xs[3],
            _ => xs[0] * xs[2] * xs[3] / 4,
        };
        let gflops = 2.0 * (c_out * c_in * k * conv_positions) as f64 / median / 1e9;
        let short: String = name.split(" B_MODE").next().unwrap_or("").chars().take(48).collect();
        println!(
            "{:<48} {:>8.1}ms {:>8.1}-{:<8.1}ms {:>8.1}",
            short,
            median * 1e3,
            times[0] * 1e3,
            times[times.len() - 1] * 1e3,
            gflops
        );
    }
    println!("sum of medians: {:.1} ms", total * 1e3);
}
