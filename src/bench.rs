//! `shadergan bench`: timing of whole training iterations, reported honestly (median and
//! spread after warm-up, with the first iteration's cold time separately).

use std::fmt::Write;
use std::time::Instant;

use anyhow::Result;

use crate::config::Config;
use crate::data::Dataset;
use crate::gpu::{describe, Gpu};
use crate::train::GanTrainer;

pub fn bench_training(gpu: &Gpu, config: &Config, data: &Dataset, iters: usize) -> Result<String> {
    let mut trainer = GanTrainer::new(gpu, config, data.len);
    let t0 = Instant::now();
    trainer.train_step(data);
    let cold = t0.elapsed().as_secs_f64();
    trainer.train_step(data);
    let before = gpu.stats();
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let t = Instant::now();
        trainer.train_step(data);
        times.push(t.elapsed().as_secs_f64());
    }
    let after = gpu.stats();
    gpu.profile_start();
    trainer.train_step(data);
    let profile = gpu.profile_report();
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    let n = times.len() as u64;
    let b = config.train.batch_size;
    let mut out = String::new();
    writeln!(out, "adapter:            {}", describe(gpu.info()))?;
    writeln!(
        out,
        "config:             batch {b}, image {0}x{0}, g_width {1}, d_width {2}, d_steps {3}",
        config.data.image_size, config.model.g_width, config.model.d_width, config.train.d_steps
    )?;
    writeln!(out, "first iteration:    {cold:.3} s (shader compilation included)")?;
    writeln!(
        out,
        "iteration:          median {median:.3} s, min {:.3} s, max {:.3} s over {n} iterations",
        times[0],
        times[times.len() - 1]
    )?;
    writeln!(
        out,
        "images/s:           {:.1} (real images through D per second)",
        (b * config.train.d_steps) as f64 / median
    )?;
    writeln!(out, "dispatches/iter:    {}", (after.dispatches - before.dispatches) / n)?;
    writeln!(out, "submits/iter:       {}", (after.submits - before.submits) / n)?;
    writeln!(out, "buffers created:    {} in the timed iterations", after.buffers_created - before.buffers_created)?;
    writeln!(out, "peak GPU memory:    {:.1} MiB allocated", after.peak_bytes as f64 / (1 << 20) as f64)?;
    let total: f64 = profile.iter().map(|r| r.2).sum();
    writeln!(out, "per-kernel time of one iteration, each dispatch timed alone (sum {total:.3} s):")?;
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
        writeln!(out, "  {k:<34} {n:>5} dispatches {:>8.1} ms {:>5.1}%", t * 1e3, 100.0 * t / total)?;
    }
    if std::env::var("SHADERGAN_PROFILE_DETAIL").is_ok() {
        for (k, n, t) in profile.iter().take(25) {
            writeln!(out, "    {k:<60} {n:>4} {:>8.1} ms", t * 1e3)?;
        }
    }
    Ok(out)
}
