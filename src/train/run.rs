//! `shadergan train`: a training run in a folder with progress bar, metrics CSV, sample grids,
//! checkpoints, loss curves and an HTML report. Resuming continues the same folder.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::{GanTrainer, StepStats};
use crate::config::{Config, DataConfig, DataKind, GanLoss};
use crate::data::{self, Dataset};
use crate::gpu::{describe, Gpu};
use crate::viz::{self, report, Curve};

/// What `shadergan train` was asked for.
pub struct RunOptions {
    /// The config file.
    pub config: PathBuf,
    /// Steps overriding the config's.
    pub steps: Option<u64>,
    /// The run folder.
    pub out: PathBuf,
    /// Continue the run in `out`.
    pub resume: bool,
    /// Show a progress bar.
    pub progress: bool,
}

/// What a run did.
pub struct RunSummary {
    /// The step reached.
    pub steps: u64,
    /// Seconds the run took.
    pub seconds: f64,
    /// The last step's measurements.
    pub last: StepStats,
}

/// The images (and labels) a GAN config names, checked against its model.
pub fn load_dataset(config: &Config) -> Result<Dataset> {
    let d = &config.data;
    let set = load_data(d, config.train.batch_size)?;
    if config.model.conditional {
        let Some(labels) = &set.labels else {
            bail!("model.conditional needs class labels: set data.labels (IDX) or use class sub-folders");
        };
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= config.model.classes) {
            bail!(
                "{}: label {bad} but model.classes = {}",
                d.labels.as_ref().unwrap_or(&d.images).display(),
                config.model.classes
            );
        }
    }
    Ok(set)
}

/// The images (and labels) of a [data] section, at least `min_len` of them.
pub fn load_data(d: &DataConfig, min_len: usize) -> Result<Dataset> {
    let mut set = match d.kind {
        DataKind::Idx => {
            let mut set = data::load_idx_images(&d.images, d.image_size)?;
            if d.channels != 1 {
                bail!("data.channels = {}: IDX files hold grayscale images, set channels = 1", d.channels);
            }
            if let Some(labels) = &d.labels {
                let l = data::load_idx_labels(labels)?;
                if l.len() != set.len {
                    bail!("{}: {} labels for {} images in {}", labels.display(), l.len(), set.len, d.images.display());
                }
                set.labels = Some(l);
            }
            set
        }
        DataKind::Folder => {
            let crop = if d.crop_size == 0 { d.image_size } else { d.crop_size };
            data::load_folder_crops(&d.images, d.image_size, d.channels, d.crops, crop, 0)?
        }
    };
    if d.limit > 0 {
        set = set.truncated(d.limit);
    }
    if set.len < min_len {
        bail!("{}: {} images, fewer than one batch of {min_len}", d.images.display(), set.len);
    }
    Ok(set)
}

const CSV_HEADER: &str = "step,d_loss,g_loss,d_real,d_fake";

/// Rows of metrics.csv as (step, d_loss, g_loss, D(x), D(G(z))).
pub fn read_metrics(path: &Path) -> Result<Vec<[f64; 5]>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let v: Vec<f64> = line
            .split(',')
            .map(|s| s.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{} line {}: not numbers", path.display(), i + 1))?;
        if v.len() != 5 {
            bail!("{} line {}: expected 5 columns", path.display(), i + 1);
        }
        rows.push([v[0], v[1], v[2], v[3], v[4]]);
    }
    Ok(rows)
}

fn write_sample_grid(trainer: &GanTrainer, path: &Path) -> Result<()> {
    let images = trainer.generate_fixed();
    let d = &trainer.config.data;
    let g = viz::grid(&images, d.channels, d.image_size, 8);
    viz::save_png(path, &image::DynamicImage::ImageRgb8(g), 2)?;
    Ok(())
}

fn ema(points: &[(f64, f64)], alpha: f64) -> Vec<(f64, f64)> {
    let mut acc = None;
    points
        .iter()
        .map(|&(x, y)| {
            let a = acc.map_or(y, |a: f64| a + alpha * (y - a));
            acc = Some(a);
            (x, a)
        })
        .collect()
}

/// loss.png (losses above, D's outputs below) and report.html from metrics.csv and the grids.
pub fn write_plots_and_report(dir: &Path, config: &Config, adapter: &str, summary: String) -> Result<()> {
    let rows = read_metrics(&dir.join("metrics.csv"))?;
    let col = |i: usize| -> Vec<(f64, f64)> { rows.iter().map(|r| (r[0], r[i])).collect() };
    let (dl, gl, dr, df) = (col(1), col(2), col(3), col(4));
    let alpha = 2.0 / (1.0 + (rows.len() as f64 / 50.0).max(1.0));
    let (dls, gls, drs, dfs) = (ema(&dl, alpha), ema(&gl, alpha), ema(&dr, alpha), ema(&df, alpha));
    let top = viz::plot_curves(
        &[Curve { values: &dls, color: [31, 119, 180] }, Curve { values: &gls, color: [255, 127, 14] }],
        800,
        300,
        None,
    );
    // A critic's mean scores are unbounded (Wasserstein losses); D's outputs are probabilities.
    let critic = matches!(config.train.loss, GanLoss::Wasserstein | GanLoss::WassersteinGp);
    let (rate_title, real_name, fake_name, rate_range) = if critic {
        ("Critic scores", "C(x)", "C(G(z))", None)
    } else {
        ("Discriminator outputs", "D(x)", "D(G(z))", Some((0.0, 1.0)))
    };
    let bottom = viz::plot_curves(
        &[Curve { values: &drs, color: [44, 160, 44] }, Curve { values: &dfs, color: [214, 39, 40] }],
        800,
        200,
        rate_range,
    );
    let mut both = image::RgbImage::from_pixel(800, 500, image::Rgb([255, 255, 255]));
    image::imageops::replace(&mut both, &top, 0, 0);
    image::imageops::replace(&mut both, &bottom, 0, 300);
    viz::save_png(&dir.join("loss.png"), &image::DynamicImage::ImageRgb8(both), 1)?;

    let grids = sample_grids(dir, 12)?;
    report::write(
        &dir.join("report.html"),
        &report::Report {
            title: &format!("shadergan run: {}", dir.display()),
            adapter,
            config_toml: &config.to_toml(),
            curves: vec![("D loss", "#1f77b4", dls), ("G loss", "#ff7f0e", gls)],
            rate_title,
            rate_curves: vec![(real_name, "#2ca02c", drs), (fake_name, "#d62728", dfs)],
            rate_range,
            images: grids,
            summary,
        },
    )?;
    Ok(())
}

/// At most `keep` of the run's sample grids (PNG bytes with a caption), evenly spread over the
/// run and always including the last, so the report stays small.
pub fn sample_grids(dir: &Path, keep: usize) -> Result<Vec<(String, Vec<u8>)>> {
    let mut grids = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join("samples")) else { return Ok(grids) };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    let stride = files.len().div_ceil(keep).max(1);
    for (i, f) in files.iter().enumerate() {
        if i % stride == 0 || i + 1 == files.len() {
            let name = f.file_stem().map(|s| s.to_string_lossy().replace("step-", "step ")).unwrap_or_default();
            grids.push((name, std::fs::read(f)?));
        }
    }
    Ok(grids)
}

/// Keeps the CSV's header and the rows up to `step` (a resumed run rewrites what follows).
pub fn truncate_metrics(path: &Path, header: &str, step: u64) -> Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut kept = vec![header.to_string()];
    for line in text.lines().skip(1) {
        if line.split(',').next().and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s <= step) {
            kept.push(line.to_string());
        }
    }
    crate::checkpoint::write_atomic(path, (kept.join("\n") + "\n").as_bytes())?;
    Ok(())
}

/// `shadergan train` for a GAN config: the run folder, progress, grids, checkpoints, report.
pub fn train(gpu: &Gpu, opts: &RunOptions) -> Result<RunSummary> {
    let mut config = Config::load(&opts.config)?;
    if let Some(steps) = opts.steps {
        if steps == 0 {
            bail!("--steps must be at least 1");
        }
        config.train.steps = steps;
    }
    let dataset = load_dataset(&config)?;
    let dir = &opts.out;
    let model_file = dir.join("model.safetensors");
    let mut trainer = if opts.resume {
        if !model_file.exists() {
            bail!("--resume: {} holds no checkpoint (model.safetensors) to continue", dir.display());
        }
        let t = GanTrainer::resume(gpu, &config, dir, dataset.len)?;
        log::info!("resuming {} at step {}", dir.display(), t.step);
        t
    } else {
        if model_file.exists() {
            bail!("{} already holds a run; pass --resume to continue it or choose another --out", dir.display());
        }
        GanTrainer::new(gpu, &config, dataset.len)
    };
    std::fs::create_dir_all(dir.join("samples")).with_context(|| format!("creating {}", dir.display()))?;
    crate::checkpoint::write_atomic(&dir.join("config.toml"), config.to_toml().as_bytes())?;
    let csv_path = dir.join("metrics.csv");
    truncate_metrics(&csv_path, CSV_HEADER, trainer.step)?;
    let mut csv = std::io::BufWriter::new(std::fs::OpenOptions::new().append(true).open(&csv_path)?);

    let total = config.train.steps;
    let bar = if opts.progress { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  ETA {eta}  {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_position(trainer.step);
    let started = Instant::now();
    let first_step = trainer.step;
    let mut last = StepStats::default();
    while trainer.step < total {
        last = trainer.train_step(&dataset);
        let s = trainer.step;
        if ![last.d_loss, last.g_loss].iter().all(|v| v.is_finite()) {
            bail!(
                "training diverged at step {s}: d_loss {} g_loss {} (try a lower learning rate)",
                last.d_loss,
                last.g_loss
            );
        }
        writeln!(csv, "{s},{},{},{},{}", last.d_loss, last.g_loss, last.d_real, last.d_fake)?;
        bar.set_message(format!(
            "D {:.3}  G {:.3}  D(x) {:.2}  D(G(z)) {:.2}",
            last.d_loss, last.g_loss, last.d_real, last.d_fake
        ));
        bar.inc(1);
        let every = |n: u64| n > 0 && s % n == 0;
        if every(config.train.sample_every) || s == total {
            write_sample_grid(&trainer, &dir.join("samples").join(format!("step-{s:06}.png")))?;
        }
        if every(config.train.checkpoint_every) || s == total {
            csv.flush()?;
            trainer.save(dir)?;
        }
    }
    csv.flush()?;
    bar.finish();
    let seconds = started.elapsed().as_secs_f64();
    write_sample_grid(&trainer, &dir.join("grid.png"))?;
    let done = trainer.step - first_step;
    let summary = format!(
        "{} steps (this session: {done} in {seconds:.0} s, {:.2} s/step); final D loss {:.3}, G loss {:.3}, D(x) {:.2}, D(G(z)) {:.2}",
        trainer.step,
        seconds / done.max(1) as f64,
        last.d_loss,
        last.g_loss,
        last.d_real,
        last.d_fake
    );
    write_plots_and_report(dir, &config, &describe(gpu.info()), summary)?;
    Ok(RunSummary { steps: trainer.step, seconds, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_of(loss: &str, scores: (f64, f64)) -> String {
        let dir = tempfile::tempdir().unwrap();
        let rows: String = (1..=20).map(|s| format!("{s},-0.2,0.1,{},{}\n", scores.0, scores.1)).collect();
        std::fs::write(dir.path().join("metrics.csv"), format!("step,d_loss,g_loss,d_real,d_fake\n{rows}")).unwrap();
        let toml = format!("[data]\nkind = \"idx\"\nimages = \"x.gz\"\n[train]\nloss = \"{loss}\"\n");
        let config = Config::parse(&toml, Path::new("test.toml")).unwrap();
        write_plots_and_report(dir.path(), &config, "test adapter", String::new()).unwrap();
        assert!(dir.path().join("loss.png").is_file());
        std::fs::read_to_string(dir.path().join("report.html")).unwrap()
    }

    #[test]
    fn critic_scores_are_charted_as_scores_not_probabilities() {
        // A Wasserstein critic's mean scores are unbounded (here negative for fakes).
        let html = report_of("wasserstein", (0.07, -0.08));
        assert!(html.contains("Critic scores") && html.contains("C(G(z))"), "critic chart not labelled as scores");
        let html = report_of("non_saturating", (0.7, 0.3));
        assert!(html.contains("Discriminator outputs") && html.contains("D(G(z))"));
    }
}
