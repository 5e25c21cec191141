//! Kernel throughput on the current adapter, one benchmark per kernel family: matmul 1024^3
//! (subgroup and portable), a skinny product (one output row, as a conv to one channel), one
//! DCGAN layer of each kind (conv 64->128 at 16x16 and transposed conv 128->64 to 16x16, batch
//! 64) forward and backward, as implicit GEMM and through explicit patch matrices, batch norm and leaky ReLU forward and backward, a reduction, and
//! an Adam update. Run: cargo bench --bench kernels
//! (GFLOP/s = criterion's "thrpt" in elements/s / 1e9 where FLOPs are given; else bytes/s.)

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shadergan::gpu::KernelSwitches;
use shadergan::{grad_with, Gpu, GpuOptions, GradOptions, Tensor};

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
    // The portable kernel (SHADERGAN_KERNELS=portable), on its own device.
    let portable = Gpu::new(&GpuOptions {
        kernels: KernelSwitches { portable: true, ..Default::default() },
        ..GpuOptions::from_env()
    })
    .expect("second device");
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
            let g = grad_with(&y, &[&x, &w], GradOptions::default().seed(&y.detach()));
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
            let g = grad_with(&y, &[&xt, &wt], GradOptions::default().seed(&y.detach()));
            gpu.synchronize();
            g
        })
    });

    // The same two layers through explicit patch matrices (im2col / col2im around the matmul),
    // what the implicit products replace, on a device of their own.
    let explicit = Gpu::new(&GpuOptions {
        kernels: KernelSwitches { patch_matrix: true, ..Default::default() },
        ..GpuOptions::from_env()
    })
    .expect("second device");
    let (xe, we) = (
        random(&explicit, &[64, 64, 16, 16], 3).requires_grad(),
        random(&explicit, &[128, 64, 4, 4], 4).requires_grad(),
    );
    group.bench_function("conv_64_128_16x16_fwd_bwd_patch_matrix", |bench| {
        bench.iter(|| {
            let y = xe.conv2d(&we, 2, 1);
            let g = grad_with(&y, &[&xe, &we], GradOptions::default().seed(&y.detach()));
            explicit.synchronize();
            g
        })
    });
    let (xte, wte) = (
        random(&explicit, &[64, 128, 8, 8], 5).requires_grad(),
        random(&explicit, &[128, 64, 4, 4], 6).requires_grad(),
    );
    group.bench_function("conv_transpose_128_64_16x16_fwd_bwd_patch_matrix", |bench| {
        bench.iter(|| {
            let y = xte.conv_transpose2d(&wte, 2, 1, 0);
            let g = grad_with(&y, &[&xte, &wte], GradOptions::default().seed(&y.detach()));
            explicit.synchronize();
            g
        })
    });

    // One output row: the last 7x7 conv of CycleGAN's generator (16 -> 1 channel, batch 8, 32x32).
    let (k, cols) = (16 * 49, 8 * 32 * 32);
    let w1 = random(&gpu, &[1, k], 7);
    let patches = random(&gpu, &[k, cols], 8);
    group.throughput(Throughput::Elements(2 * (k * cols) as u64));
    group.bench_function("matmul_skinny_1x784x8192", |bench| {
        bench.iter(|| {
            let c = w1.matmul(&patches);
            gpu.synchronize();
            c
        })
    });

    // The memory-bound families, in bytes moved (each f32 read or written once).
    let act = random(&gpu, &[64, 128, 8, 8], 9).requires_grad();
    let bytes = (64 * 128 * 8 * 8 * 4) as u64;
    let (gamma, beta) = (Tensor::ones(&gpu, &[128]).requires_grad(), Tensor::zeros(&gpu, &[128]).requires_grad());
    let (running_mean, running_var) = (Tensor::zeros(&gpu, &[128]), Tensor::ones(&gpu, &[128]));
    group.throughput(Throughput::Bytes(6 * bytes));
    group.bench_function("batch_norm_64x128x8x8_fwd_bwd", |bench| {
        bench.iter(|| {
            let y = act.batch_norm_train(&gamma, &beta, &running_mean, &running_var, 0.1, 1e-5);
            let g = grad_with(&y, &[&act, &gamma, &beta], GradOptions::default().seed(&y.detach()));
            gpu.synchronize();
            g
        })
    });
    group.throughput(Throughput::Bytes(5 * bytes));
    group.bench_function("leaky_relu_64x128x8x8_fwd_bwd", |bench| {
        bench.iter(|| {
            let y = act.leaky_relu(0.2);
            let g = grad_with(&y, &[&act], GradOptions::default().seed(&y.detach()));
            gpu.synchronize();
            g
        })
    });
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("sum_over_batch_and_space_64x128x8x8", |bench| {
        bench.iter(|| {
            let s = act.sum(&[0, 2, 3], false);
            gpu.synchronize();
            s
        })
    });
    // Data movement: the last two axes swapped (4x4 blocks) and a general permute (gather).
    group.throughput(Throughput::Bytes(2 * bytes));
    let planes = act.reshape(&[64, 128, 64]);
    group.bench_function("transpose_last_two_64x128x64", |bench| {
        bench.iter(|| {
            let t = planes.t();
            gpu.synchronize();
            t
        })
    });
    group.bench_function("permute_nchw_to_cnhw_64x128x8x8", |bench| {
        bench.iter(|| {
            let t = act.permute(&[1, 0, 2, 3]);
            gpu.synchronize();
            t
        })
    });
    let params = vec![random(&gpu, &[128, 64, 4, 4], 10).requires_grad()];
    let grads = vec![random(&gpu, &[128, 64, 4, 4], 11)];
    let mut adam = shadergan::optim::Adam::new(2e-4, 0.5, 0.999);
    group.throughput(Throughput::Bytes(7 * (128 * 64 * 16 * 4) as u64));
    group.bench_function("adam_131k_parameters", |bench| {
        bench.iter(|| {
            shadergan::optim::Optimizer::step(&mut adam, &params, &grads);
            gpu.synchronize();
        })
    });
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
