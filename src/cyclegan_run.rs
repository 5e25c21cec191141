//! `shadergan train` for CycleGAN configs: run folder with progress bar, metrics CSV, sample
//! grids (x | G(x) | F(G(x)) and y | F(y) | G(F(y)) rows), checkpoints, loss curves, report.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::config::CycleConfig;
use crate::cyclegan::{CycleStats, CycleTrainer};
use crate::data::Dataset;
use crate::gpu::{describe, Gpu};
use crate::train::run::{load_data, sample_grids, truncate_metrics};
use crate::viz::{self, report, Curve};

const HEADER: &str = "step,g_adv,cycle,identity,d_x,d_y";

/// Rows x | G(x) | F(G(x)) for the first 8 images of X, then y | F(y) | G(F(y)) for Y.
pub fn cycle_grid(t: &CycleTrainer, x: &Dataset, y: &Dataset) -> image::RgbImage {
    let (c, s) = (x.channels, x.size);
    let per = c * s * s;
    let mut tiles = Vec::new();
    for (data, forward) in [(x, true), (y, false)] {
        let n = data.len.min(8);
        let input = &data.pixels[..n * per];
        let there = t.translate(input, forward);
        let back = t.translate(&there, !forward);
        for i in 0..n {
            for v in [input, &there[..], &back[..]] {
                tiles.extend_from_slice(&v[i * per..(i + 1) * per]);
            }
        }
    }
    viz::grid(&tiles, c, s, 3)
}

/// `shadergan train` for a CycleGAN config: the run folder, progress, grids, checkpoints, report.
pub fn train(
    gpu: &Gpu,
    config_path: &Path,
    steps: Option<u64>,
    dir: &Path,
    resume: bool,
    progress: bool,
) -> Result<()> {
    let mut config = CycleConfig::load(config_path)?;
    if let Some(s) = steps {
        if s == 0 {
            bail!("--steps must be at least 1");
        }
        config.train.steps = s;
    }
    let b = config.train.batch_size;
    let x = load_data(&config.domain_x, b)?;
    let y = load_data(&config.domain_y, b)?;
    let model = dir.join("model.safetensors");
    let mut t = if resume {
        if !model.exists() {
            bail!("--resume: {} holds no checkpoint (model.safetensors) to continue", dir.display());
        }
        CycleTrainer::resume(gpu, &config, dir, x.len, y.len)?
    } else {
        if model.exists() {
            bail!("{} already holds a run; pass --resume to continue it or choose another --out", dir.display());
        }
        CycleTrainer::new(gpu, &config, x.len, y.len)
    };
    std::fs::create_dir_all(dir.join("samples")).with_context(|| format!("creating {}", dir.display()))?;
    crate::checkpoint::write_atomic(&dir.join("config.toml"), config.to_toml().as_bytes())?;
    let csv_path = dir.join("metrics.csv");
    truncate_metrics(&csv_path, HEADER, t.step)?;
    let mut csv = std::io::BufWriter::new(std::fs::OpenOptions::new().append(true).open(&csv_path)?);
    let total = config.train.steps;
    let bar = if progress { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  ETA {eta}  {msg}")
            .expect("template"),
    );
    bar.set_position(t.step);
    let started = Instant::now();
    let first = t.step;
    let mut last = CycleStats::default();
    while t.step < total {
        last = t.train_step(&x, &y);
        let s = t.step;
        if ![last.g_adv, last.cycle, last.d_x, last.d_y].iter().all(|v| v.is_finite()) {
            bail!("training diverged at step {s}: {last:?}");
        }
        writeln!(csv, "{s},{},{},{},{},{}", last.g_adv, last.cycle, last.identity, last.d_x, last.d_y)?;
        bar.set_message(format!(
            "cycle {:.3}  G adv {:.3}  D_X {:.3}  D_Y {:.3}",
            last.cycle, last.g_adv, last.d_x, last.d_y
        ));
        bar.inc(1);
        let every = |n: u64| n > 0 && s % n == 0;
        if every(config.train.sample_every) || s == total {
            viz::save_png(
                &dir.join("samples").join(format!("step-{s:06}.png")),
                &image::DynamicImage::ImageRgb8(cycle_grid(&t, &x, &y)),
                2,
            )?;
        }
        if every(config.train.checkpoint_every) || s == total {
            csv.flush()?;
            t.save(dir)?;
        }
    }
    csv.flush()?;
    bar.finish();
    let seconds = started.elapsed().as_secs_f64();
    let grid = cycle_grid(&t, &x, &y);
    viz::save_png(&dir.join("grid.png"), &image::DynamicImage::ImageRgb8(grid.clone()), 2)?;

    let text = std::fs::read_to_string(&csv_path)?;
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').filter_map(|v| v.parse().ok()).collect())
        .filter(|r: &Vec<f64>| r.len() == 6)
        .collect();
    let col = |i: usize| -> Vec<(f64, f64)> { rows.iter().map(|r| (r[0], r[i])).collect() };
    let (cyc, adv, dx, dy) = (col(2), col(1), col(4), col(5));
    let img = viz::plot_curves(
        &[
            Curve { values: &cyc, color: [31, 119, 180] },
            Curve { values: &adv, color: [255, 127, 14] },
            Curve { values: &dx, color: [44, 160, 44] },
            Curve { values: &dy, color: [214, 39, 40] },
        ],
        800,
        320,
        None,
    );
    viz::save_png(&dir.join("loss.png"), &image::DynamicImage::ImageRgb8(img), 1)?;
    let images = sample_grids(dir, 8)?;
    report::write(
        &dir.join("report.html"),
        &report::Report {
            title: &format!("shadergan CycleGAN run: {}", dir.display()),
            adapter: &describe(gpu.info()),
            config_toml: &config.to_toml(),
            curves: vec![("cycle (L1)", "#1f77b4", cyc.clone()), ("G adversarial", "#ff7f0e", adv.clone())],
            rate_title: "Discriminator losses",
            rate_curves: vec![("D_X loss", "#2ca02c", dx.clone()), ("D_Y loss", "#d62728", dy.clone())],
            rate_range: None,
            images,
            summary: format!(
                "{} steps (this session {} in {seconds:.0} s). Each grid row: input | translation | reconstruction; X rows first, then Y. Final cycle loss {:.4}.",
                t.step,
                t.step - first,
                last.cycle
            ),
        },
    )?;
    println!(
        "trained {} steps in {seconds:.0} s; run folder {} (grid.png, loss.png, report.html, model.safetensors)",
        t.step,
        dir.display()
    );
    Ok(())
}
