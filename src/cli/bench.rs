//! `shadergan bench`: timing of whole training iterations, reported honestly (median and
//! spread after warm-up, with the first iteration's cold time separately).

use std::fmt::Write;
use std::time::Instant;

use anyhow::Result;

use shadergan::config::{Config, CycleConfig};
use shadergan::cyclegan::{CycleTrainer, Domains};
use shadergan::data::Dataset;
use shadergan::gpu::{describe, Gpu};
use shadergan::train::GanTrainer;

/// What `shadergan bench` may change in a config before timing it.
#[derive(Clone, Copy, Debug, Default)]
pub struct BenchOverrides {
    /// Images per step.
    pub batch: Option<usize>,
    /// Both networks' width (GAN configs).
    pub width: Option<usize>,
    /// Image side (GAN configs).
    pub image_size: Option<usize>,
    /// Image channels: the grayscale data repeated in each (GAN configs).
    pub channels: Option<usize>,
}

/// Times `iters` iterations of the config at `path` (a GAN or a CycleGAN) with `overrides`.
pub fn bench_config(gpu: &Gpu, path: &std::path::Path, overrides: BenchOverrides, iters: usize) -> Result<String> {
    use shadergan::train::run::{self, AnyConfig};
    match AnyConfig::load(path)? {
        AnyConfig::Cycle(mut cfg) => {
            if overrides.width.is_some() || overrides.image_size.is_some() || overrides.channels.is_some() {
                anyhow::bail!(
                    "--width, --image-size and --channels apply to GAN configs; a CycleGAN takes --batch only"
                );
            }
            if let Some(b) = overrides.batch {
                cfg.train.batch_size = b;
            }
            let cfg = CycleConfig::parse(&cfg.to_toml(), path)?; // validates the override
            let b = cfg.train.batch_size;
            let domains = Domains { x: run::load_data(&cfg.domain_x, b)?, y: run::load_data(&cfg.domain_y, b)? };
            bench_cycle_training(gpu, &cfg, &domains, iters)
        }
        AnyConfig::Gan(mut cfg) => {
            if let Some(b) = overrides.batch {
                cfg.train.batch_size = b;
            }
            if let Some(w) = overrides.width {
                (cfg.model.g_width, cfg.model.d_width) = (w, w);
            }
            if let Some(s) = overrides.image_size {
                cfg.data.image_size = s;
            }
            cfg.validate(path)?;
            let mut data = run::load_dataset(&cfg)?;
            let channels = overrides.channels.unwrap_or(cfg.data.channels);
            if channels != data.channels {
                data = data.with_channels(channels).map_err(anyhow::Error::msg)?;
                cfg.data.channels = channels;
                cfg.validate(path)?;
            }
            bench_training(gpu, &cfg, &data, iters)
        }
    }
}

/// Times `iters` iterations of a GAN config's training step on `data` (the report `shadergan bench` prints).
pub fn bench_training(gpu: &Gpu, config: &Config, data: &Dataset, iters: usize) -> Result<String> {
    let mut trainer = GanTrainer::new(gpu, config, data.len);
    let b = config.train.batch_size;
    let header = format!(
        "config:             batch {b}, image {0}x{0}, g_width {1}, d_width {2}, d_steps {3}\n",
        config.data.image_size, config.model.g_width, config.model.d_width, config.train.d_steps
    );
    bench_steps(gpu, &header, b * config.train.d_steps, iters, || {
        trainer.train_step(data);
    })
}

/// Times `iters` iterations of a CycleGAN config's training step on its two domains.
pub fn bench_cycle_training(gpu: &Gpu, config: &CycleConfig, domains: &Domains, iters: usize) -> Result<String> {
    let mut trainer = CycleTrainer::new(gpu, config, domains.x.len, domains.y.len);
    let b = config.train.batch_size;
    let header = format!(
        "config:             CycleGAN, batch {b}, image {0}x{0}, g_width {1} with {2} blocks, d_width {3} with {4} layers\n",
        config.domain_x.image_size, config.model.g_width, config.model.blocks, config.model.d_width, config.model.d_layers
    );
    bench_steps(gpu, &header, 2 * b, iters, || {
        trainer.train_step(domains);
    })
}

/// Times `step` (one training iteration): a cold first call, one warm-up, `iters` timed calls,
/// then one call with every dispatch timed alone for the per-kernel breakdown. `header` lines
/// describe the configuration; `images_per_step` real images pass through D in each step.
pub fn bench_steps(
    gpu: &Gpu,
    header: &str,
    images_per_step: usize,
    iters: usize,
    mut step: impl FnMut(),
) -> Result<String> {
    // Measured before any GPU work so lavapipe's threads are idle.
    let host = (gpu.info().device_type == wgpu::DeviceType::Cpu).then(|| super::host_speed::measure(0.3));
    let t0 = Instant::now();
    step();
    let cold = t0.elapsed().as_secs_f64();
    step();
    let before = gpu.stats();
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        step();
        times.push(t.elapsed().as_secs_f64());
    }
    let after = gpu.stats();
    gpu.profile_start();
    step();
    let profile = gpu.profile_report();
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    let n = times.len() as u64;
    let mut out = String::new();
    writeln!(out, "adapter:            {}", describe(gpu.info()))?;
    if let Some(host) = host {
        writeln!(out, "host CPU:           {host}")?;
    }
    out.push_str(header);
    writeln!(out, "first iteration:    {cold:.3} s (shader compilation included)")?;
    writeln!(
        out,
        "iteration:          median {median:.3} s, mean {:.3} s, min {:.3} s, max {:.3} s over {n} iterations",
        times.iter().sum::<f64>() / times.len() as f64,
        times[0],
        times[times.len() - 1]
    )?;
    writeln!(out, "images/s:           {:.1} (real images through D per second)", images_per_step as f64 / median)?;
    let flops = (after.matmul_flops - before.matmul_flops) as f64 / n as f64;
    writeln!(
        out,
        "work:               {:.2} GFLOP per iteration in matrix products (2·M·N·K each: every conv, transposed conv\n                    and linear layer, forward and backward), {:.1} GFLOP/s at the median",
        flops / 1e9,
        flops / 1e9 / median
    )?;
    writeln!(out, "dispatches/iter:    {}", (after.dispatches - before.dispatches) / n)?;
    writeln!(out, "submits/iter:       {}", (after.submits - before.submits) / n)?;
    writeln!(out, "buffers created:    {} in the timed iterations", after.buffers_created - before.buffers_created)?;
    writeln!(
        out,
        "bind groups made:   {} in the timed iterations",
        after.bind_groups_created - before.bind_groups_created
    )?;
    writeln!(out, "peak GPU memory:    {:.1} MiB allocated", after.peak_bytes as f64 / (1 << 20) as f64)?;
    let total: f64 = profile.iter().map(|r| r.2).sum();
    let how = if gpu.profile_uses_timestamps() {
        "device timestamps around each dispatch and operand texture copy"
    } else {
        "each dispatch submitted and waited for alone"
    };
    writeln!(out, "per-kernel time of one iteration ({how}; sum {total:.3} s):")?;
    let mut families: std::collections::BTreeMap<String, (u64, f64)> = Default::default();
    for (k, n, t) in &profile {
        let fam = k.split(' ').next().unwrap_or(k).to_string();
        let e = families.entry(fam).or_default();
        e.0 += n;
        e.1 += t;
    }
    let mut fam: Vec<_> = families.into_iter().collect();
    fam.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
    for (k, (n, t)) in fam {
        let what = if k.starts_with("copy:") { "copies" } else { "dispatches" };
        writeln!(out, "  {k:<34} {n:>5} {what:<10} {:>8.1} ms {:>5.1}%", t * 1e3, 100.0 * t / total)?;
    }
    if std::env::var("SHADERGAN_PROFILE_DETAIL").is_ok() {
        for (k, n, t) in profile.iter().take(25) {
            writeln!(out, "    {k:<60} {n:>4} {:>8.1} ms", t * 1e3)?;
        }
    }
    Ok(out)
}
