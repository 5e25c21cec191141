//! One training engine for every model: a model describes its iteration through [`Trainable`]
//! and [`Trainer::fit`] gives it a run folder with a progress bar, `metrics.csv`, sample grids,
//! atomic checkpoints with bit-identical resume, a divergence stop, a lock against a second run,
//! `loss.png` and `report.html`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::checkpoint_unit::{has_checkpoint, restore_checkpoint, save_checkpoint};
use super::report::write_plots_and_report;
use super::{Shard, TrainState};
use crate::checkpoint::CheckpointError;
use crate::nn::Module;

/// One iteration's measurements by name, in display order (losses, mean scores, ...).
pub type Metrics = Vec<(&'static str, f32)>;

/// One chart of the report: which metrics it draws and its vertical range (None fits the data).
pub struct Chart {
    /// The chart's heading.
    pub title: &'static str,
    /// Names of the metrics drawn, as [`Trainable::train_step`] reports them.
    pub metrics: Vec<&'static str>,
    /// Fixed vertical extent, e.g. (0, 1) for probabilities.
    pub range: Option<(f64, f64)>,
}

/// A model the engine can train: its iteration in the paper's words, its networks by name, and
/// whatever else it needs to continue bit for bit after a restart.
pub trait Trainable {
    /// What one iteration reads (a dataset, two domains, ...).
    type Data: ?Sized;

    /// The model's kind, saved in checkpoints (e.g. "dcgan"); a resume checks it.
    fn kind(&self) -> &str;

    /// Iterations taken so far.
    fn steps_done(&self) -> u64;

    /// One training iteration, e.g. (1) update D on real and detached fake, (2) update G.
    fn train_step(&mut self, data: &Self::Data) -> Result<Metrics>;

    /// Every network with its checkpoint name (its tensors are saved as `name.<tensor>`).
    fn networks(&self) -> Vec<(&'static str, &dyn Module)>;

    /// Adds optimizer moments, random generators, data positions... to `state`.
    fn save_state(&self, state: &mut TrainState);

    /// Restores what [`save_state`](Self::save_state) wrote, `state.step` included.
    fn load_state(&mut self, state: &TrainState) -> Result<(), CheckpointError>;

    /// The picture of progress drawn every `sample_every` steps (e.g. samples of fixed noise).
    fn sample_grid(&self, data: &Self::Data) -> image::RgbImage;

    /// The run's config as TOML, saved in checkpoints and compared on resume ("" for none).
    fn config_toml(&self) -> String {
        String::new()
    }

    /// The report's charts; by default one chart of every metric.
    fn charts(&self, metrics: &[&'static str]) -> Vec<Chart> {
        vec![Chart { title: "Metrics", metrics: metrics.to_vec(), range: None }]
    }
}

/// Measurements of the model as it stands, taken every few steps (the quality of its samples,
/// say): written to `eval.csv` and charted in the report.
pub trait Evaluation<M: ?Sized> {
    /// Measures the model now.
    fn evaluate(&mut self, model: &M) -> Result<Metrics>;

    /// The report's charts of these measurements.
    fn charts(&self) -> Vec<Chart>;
}

/// How a run is carried out: where, how long, how often it writes. Builder-style.
#[derive(Clone, Debug)]
pub struct Trainer {
    /// The run folder.
    pub out: PathBuf,
    /// Train until this many iterations are done.
    pub steps: u64,
    /// Write a sample grid every this many steps (0: only at the end).
    pub sample_every: u64,
    /// Write a checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: u64,
    /// Continue the checkpoint in `out` instead of starting fresh.
    pub resume: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// The adapter's description, shown in the report.
    pub adapter: String,
    /// This process's rank in a data-parallel job (rank 0 writes every file).
    pub shard: Shard,
    /// Compare the ranks' weights every this many steps (data-parallel jobs).
    pub check_every: u64,
    /// Run the evaluation given to [`fit_evaluated`](Self::fit_evaluated) every this many steps
    /// (and at the end).
    pub eval_every: u64,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The step reached.
    pub steps: u64,
    /// Seconds this session took.
    pub seconds: f64,
    /// The last iteration's measurements.
    pub last: Metrics,
}

impl Trainer {
    /// A run into `out` until `steps` iterations, writing grids and a checkpoint at the end.
    pub fn new(out: impl Into<PathBuf>, steps: u64) -> Self {
        Trainer {
            out: out.into(),
            steps,
            sample_every: 0,
            checkpoint_every: 0,
            resume: false,
            progress: false,
            adapter: String::new(),
            shard: Shard::single(),
            check_every: 50,
            eval_every: 0,
        }
    }

    /// Train as one rank of a data-parallel job (the model must be sharded the same way).
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// Compare the ranks' weights every `n` steps (and at the end).
    pub fn check_every(mut self, n: u64) -> Self {
        self.check_every = n.max(1);
        self
    }

    /// A sample grid every `n` steps.
    pub fn sample_every(mut self, n: u64) -> Self {
        self.sample_every = n;
        self
    }

    /// An evaluation every `n` steps (see [`fit_evaluated`](Self::fit_evaluated)).
    pub fn evaluate_every(mut self, n: u64) -> Self {
        self.eval_every = n;
        self
    }

    /// A checkpoint every `n` steps.
    pub fn checkpoint_every(mut self, n: u64) -> Self {
        self.checkpoint_every = n;
        self
    }

    /// Continue the run in the folder (it must hold a checkpoint).
    pub fn resume(mut self, yes: bool) -> Self {
        self.resume = yes;
        self
    }

    /// Show a progress bar.
    pub fn progress(mut self, yes: bool) -> Self {
        self.progress = yes;
        self
    }

    /// Name the adapter in the report.
    pub fn adapter(mut self, description: impl Into<String>) -> Self {
        self.adapter = description.into();
        self
    }

    /// Trains `model` on `data` in the run folder until `steps`. A fresh run refuses a folder
    /// that holds a checkpoint; `resume` refuses one that does not.
    pub fn fit<M: Trainable>(&self, model: &mut M, data: &M::Data) -> Result<RunSummary> {
        self.fit_evaluated(model, data, None)
    }

    /// [`fit`](Self::fit), measuring the model with `evaluation` every `eval_every` steps and at
    /// the end (on rank 0) into `eval.csv`, which the report charts.
    pub fn fit_evaluated<M: Trainable>(
        &self,
        model: &mut M,
        data: &M::Data,
        mut evaluation: Option<&mut dyn Evaluation<M>>,
    ) -> Result<RunSummary> {
        if self.steps == 0 {
            bail!("steps must be at least 1");
        }
        let dir = &self.out;
        let leader = self.shard.is_leader();
        let _lock = if leader {
            std::fs::create_dir_all(dir.join("samples")).with_context(|| format!("creating {}", dir.display()))?;
            let lock = RunLock::acquire(dir)?;
            remove_stale_temp_files(dir);
            if self.resume {
                if !has_checkpoint(dir) {
                    bail!("--resume: {} holds no checkpoint (checkpoint.toml) to continue", dir.display());
                }
                restore_checkpoint(model, dir)?;
                log::info!("resuming {} at step {}", dir.display(), model.steps_done());
            } else if has_checkpoint(dir) {
                // Only a manifest marks a complete checkpoint: a folder without one (a run killed
                // before its first checkpoint finished) starts afresh and loses nothing.
                bail!("{} already holds a run; pass --resume to continue it or choose another --out", dir.display());
            }
            Some(lock)
        } else {
            None
        };
        // Every rank starts from rank 0's weights, optimizer state, seeds and data position.
        self.shard.sync_from_leader(model)?;
        let config = model.config_toml();
        if leader && !config.is_empty() {
            crate::checkpoint::write_atomic(&dir.join("config.toml"), config.as_bytes())?;
        }

        let csv_path = dir.join("metrics.csv");
        let eval_path = dir.join("eval.csv");
        let mut eval_csv: Option<std::io::BufWriter<File>> = None;
        let bar = progress_bar(self.progress && leader, self.steps, model.steps_done());
        let started = Instant::now();
        let first_step = model.steps_done();
        let mut csv: Option<std::io::BufWriter<File>> = None;
        let mut last = Metrics::new();
        while model.steps_done() < self.steps {
            last = model.train_step(data)?;
            let s = model.steps_done();
            if let Some((name, v)) = last.iter().find(|(_, v)| !v.is_finite()) {
                bail!(
                    "training diverged at step {s}: {name} = {v}; the last checkpoint in {} holds finite weights \
                     (try a lower learning rate)",
                    dir.display()
                );
            }
            let every = |n: u64| n > 0 && s.is_multiple_of(n);
            if every(self.check_every) || s == self.steps {
                self.shard.check_in_step(model).map_err(anyhow::Error::msg)?;
            }
            if !leader {
                continue;
            }
            let csv = append_row(&mut csv, &csv_path, first_step, s, &last)?;
            bar.set_message(last.iter().map(|(n, v)| format!("{n} {v:.3}")).collect::<Vec<_>>().join("  "));
            bar.inc(1);
            if every(self.sample_every) || s == self.steps {
                let path = dir.join("samples").join(format!("step-{s:06}.png"));
                crate::viz::save_png(&path, &image::DynamicImage::ImageRgb8(model.sample_grid(data)), 2)?;
            }
            if let Some(e) = evaluation.as_deref_mut().filter(|_| every(self.eval_every) || s == self.steps) {
                let measured = e.evaluate(model)?;
                append_row(&mut eval_csv, &eval_path, first_step, s, &measured)?.flush()?;
                let shown: Vec<String> = measured.iter().map(|(n, v)| format!("{n} {v:.4}")).collect();
                if bar.is_hidden() {
                    log::info!("step {s}: {}", shown.join(", "));
                } else {
                    bar.println(format!("step {s}: {}", shown.join(", ")));
                }
            }
            if every(self.checkpoint_every) || s == self.steps {
                csv.flush()?;
                save_checkpoint(model, dir)?;
            }
        }
        if let Some(c) = &mut csv {
            c.flush()?;
        }
        bar.finish();
        let seconds = started.elapsed().as_secs_f64();
        if self.shard.collective().is_some() {
            let done = (model.steps_done() - first_step).max(1) as f64;
            let (reduce, all) = self.shard.averaging_time();
            log::info!(
                "rank {} of {}: per step {:.1} ms, of which all-reduce {:.1} ms and readback + upload {:.1} ms",
                self.shard.rank(),
                self.shard.ranks(),
                1e3 * seconds / done,
                1e3 * reduce.as_secs_f64() / done,
                1e3 * (all - reduce).as_secs_f64() / done
            );
        }
        if !leader {
            return Ok(RunSummary { steps: model.steps_done(), seconds, last });
        }
        crate::viz::save_png(&dir.join("grid.png"), &image::DynamicImage::ImageRgb8(model.sample_grid(data)), 2)?;
        let done = model.steps_done() - first_step;
        let finals: Vec<String> = last.iter().map(|(n, v)| format!("{n} {v:.3}")).collect();
        let summary = format!(
            "{} steps (this session: {done} in {seconds:.0} s, {:.2} s/step); final {}",
            model.steps_done(),
            seconds / done.max(1) as f64,
            finals.join(", ")
        );
        let names: Vec<&'static str> = last.iter().map(|(n, _)| *n).collect();
        if csv_path.exists() && !names.is_empty() {
            let eval_charts = evaluation.map(|e| e.charts()).unwrap_or_default();
            write_plots_and_report(dir, &model.charts(&names), &eval_charts, &config, &self.adapter, summary)?;
        }
        Ok(RunSummary { steps: model.steps_done(), seconds, last })
    }
}

fn progress_bar(show: bool, total: u64, at: u64) -> indicatif::ProgressBar {
    let bar = if show { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  ETA {eta}  {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_position(at);
    bar
}

/// Appends step `step`'s `values` to the CSV at `path`, opening it (see [`open_metrics`]) on
/// the first row of this session.
fn append_row<'a>(
    file: &'a mut Option<std::io::BufWriter<File>>,
    path: &Path,
    first_step: u64,
    step: u64,
    values: &Metrics,
) -> Result<&'a mut std::io::BufWriter<File>> {
    let out = match file {
        Some(f) => f,
        None => file.insert(open_metrics(path, values, first_step)?),
    };
    let row: Vec<String> = values.iter().map(|(_, v)| v.to_string()).collect();
    writeln!(out, "{step},{}", row.join(","))?;
    Ok(out)
}

/// metrics.csv (or eval.csv) with the header of `first`'s names and the rows up to `step` (a resumed run
/// rewrites what follows), open for appending.
fn open_metrics(path: &Path, first: &Metrics, step: u64) -> Result<std::io::BufWriter<File>> {
    let header = std::iter::once("step").chain(first.iter().map(|(n, _)| *n)).collect::<Vec<_>>().join(",");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if step > 0 && text.lines().next().is_some_and(|h| h != header) {
        bail!("{}: header '{}' but this model reports '{header}'", path.display(), text.lines().next().unwrap_or(""));
    }
    let mut kept = vec![header];
    for line in text.lines().skip(1) {
        if line.split(',').next().and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s <= step) {
            kept.push(line.to_string());
        }
    }
    crate::checkpoint::write_atomic(path, (kept.join("\n") + "\n").as_bytes())?;
    let file =
        std::fs::OpenOptions::new().append(true).open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(std::io::BufWriter::new(file))
}

/// Temporary files of writes that a killed process never finished (`*.tmp`).
fn remove_stale_temp_files(dir: &Path) {
    for sub in [dir.to_path_buf(), dir.join("samples")] {
        let Ok(entries) = std::fs::read_dir(&sub) else { continue };
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// An exclusive lock on a run folder (`run.lock`, holding the owner's PID). The operating
/// system releases it when the process ends, however it ends.
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock of `dir`, or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        let path = dir.join("run.lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                bail!(
                    "{} is in use by another training run (process {}); wait for it to finish or choose another --out",
                    dir.display(),
                    holder.trim()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        file.set_len(0)?;
        write!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(RunLock { _file: file })
    }
}
