//! Whole training iterations on the bundled data, as `shadergan bench` times them: the DCGAN of
//! configs/dcgan-mnist.toml (one D update on a real and a fake batch, one G update) at batch 64,
//! and a CycleGAN step of configs/cyclegan-digits.toml. Run: cargo bench --bench training
//! (criterion's "thrpt" is real images through D per second).

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shadergan::config::{Config, CycleConfig};
use shadergan::cyclegan::{CycleTrainer, Domains};
use shadergan::train::{run, GanTrainer};
use shadergan::Gpu;

fn training(c: &mut Criterion) {
    let gpu = Gpu::default_device().expect("benchmarks need a GPU adapter");
    eprintln!("adapter: {}", shadergan::gpu::describe(gpu.info()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::set_current_dir(root).expect("the crate root holds configs/ and assets/");
    let mut group = c.benchmark_group("training");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(20));

    let config = Config::load(Path::new("configs/dcgan-mnist.toml")).expect("DCGAN config");
    let data = run::load_dataset(&config).expect("bundled MNIST");
    let mut trainer = GanTrainer::new(&gpu, &config, data.len);
    group.throughput(Throughput::Elements(config.train.batch_size as u64));
    group.bench_function("dcgan_mnist_iteration_batch64", |bench| {
        bench.iter(|| trainer.train_step(&data));
    });

    let cycle = CycleConfig::load(Path::new("configs/cyclegan-digits.toml")).expect("CycleGAN config");
    let b = cycle.train.batch_size;
    let domains = Domains {
        x: run::load_data(&cycle.domain_x, b).expect("UCI digits"),
        y: run::load_data(&cycle.domain_y, b).expect("bundled MNIST"),
    };
    let mut cycle_trainer = CycleTrainer::new(&gpu, &cycle, domains.x.len, domains.y.len);
    group.throughput(Throughput::Elements(2 * b as u64));
    group.bench_function("cyclegan_digits_iteration_batch8", |bench| {
        bench.iter(|| cycle_trainer.train_step(&domains));
    });
    group.finish();
}

criterion_group!(benches, training);
criterion_main!(benches);
