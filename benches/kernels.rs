//! Kernel throughput on the current adapter: matmul 1024^3 and one DCGAN layer of each kind
//! (conv 64->128 at 16x16 and transposed conv 128->64 to 16x16, batch 64), forward and backward.
//! Run: cargo bench --bench kernels   (GFLOP/s = criterion's "thrpt" in elements/s / 1e9).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shadergan::{grad, Gpu, GpuOptions, Tensor};

fn random(gpu: &Gpu, shape: &[usize], seed: u32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(2654435761).max(1);
    let data: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) - 0.5
        })
        .collect();
    Tensor::from_vec(gpu, shape, &data)
}

fn kernels(c: &mut Criterion) {
    let gpu = Gpu::default_device().expect("benchmarks need a GPU adapter");
    eprintln!("adapter: {}", shadergan::gpu::describe(gpu.info()));
    let mut group = c.benchmark_group("kernels");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(8));

    let n = 1024;
    let a = random(&gpu, &[n, n], 1);
    let b = random(&gpu, &[n, n], 2);
    group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
    group.bench_function("matmul_1024", |bench| {
        bench.iter(|| {
            let c = a.matmul(&b);
            gpu.synchronize();
            c
        })
    });
    // The portable kernel (what GPUs without 8-wide subgroups run), on its own device.
    let portable = Gpu::new(&GpuOptions { portable_kernels: true, ..GpuOptions::from_env() }).expect("second device");
    let (pa, pb) = (random(&portable, &[n, n], 1), random(&portable, &[n, n], 2));
    group.bench_function("matmul_1024_portable", |bench| {
        bench.iter(|| {
            let c = pa.matmul(&pb);
            portable.synchronize();
            c
        })
    });

    // conv 64->128, k4 s2 p1, 16x16 -> 8x8, batch 64: forward + both gradients.
    let x = random(&gpu, &[64, 64, 16, 16], 3).requires_grad();
    let w = random(&gpu, &[128, 64, 4, 4], 4).requires_grad();
    let fwd_flops = 2 * 64 * 128 * 8 * 8 * 64 * 16;
    group.throughput(Throughput::Elements(3 * fwd_flops as u64));
    group.bench_function("conv_64_128_16x16_fwd_bwd", |bench| {
        bench.iter(|| {
            let y = x.conv2d(&w, 2, 1);
            let g = grad(&y, &[&x, &w], Some(&y.detach()), false);
            gpu.synchronize();
            g
        })
    });

    // transposed conv 128->64, k4 s2 p1, 8x8 -> 16x16, batch 64.
    let xt = random(&gpu, &[64, 128, 8, 8], 5).requires_grad();
    let wt = random(&gpu, &[128, 64, 4, 4], 6).requires_grad();
    group.bench_function("conv_transpose_128_64_16x16_fwd_bwd", |bench| {
        bench.iter(|| {
            let y = xt.conv_transpose2d(&wt, 2, 1, 0);
            let g = grad(&y, &[&xt, &wt], Some(&y.detach()), false);
            gpu.synchronize();
            g
        })
    });
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
