//! The `shadergan` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use bench::BenchOverrides;
use shadergan::gpu::{describe, list_adapters, Gpu, GpuOptions};
use shadergan::train::{self, run};
use shadergan::{tasks, viz};

mod cli;
use cli::bench;
use cli::classify::classify;

#[derive(Parser)]
#[command(name = "shadergan", version, about = "Train and use GANs on any GPU through WebGPU compute shaders")]
struct Cli {
    /// Use the first adapter whose name contains this text (also SHADERGAN_ADAPTER).
    #[arg(long, global = true)]
    adapter: Option<String>,
    /// Force the software (CPU) adapter (also SHADERGAN_CPU=1).
    #[arg(long, global = true)]
    cpu: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model from a TOML config (a GAN, or a CycleGAN when it names two domains).
    Train {
        #[arg(long)]
        config: PathBuf,
        /// Override train.steps.
        #[arg(long)]
        steps: Option<u64>,
        /// Run folder (default: runs/<config name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue the run in --out from its last checkpoint.
        #[arg(long)]
        resume: bool,
        /// No progress bar (logs and CI).
        #[arg(long)]
        quiet: bool,
    },
    /// Write generated images: one PNG per sample plus grid.png.
    Sample {
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long, default_value_t = 64)]
        n: usize,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Redraw noise entries beyond |T| (the truncation trick).
        #[arg(long)]
        truncation: Option<f32>,
        /// Class of every sample (conditional models); without it, one grid row per class.
        #[arg(long)]
        class: Option<u32>,
    },
    /// A grid whose rows walk z between random endpoints (linear rows, then spherical rows).
    Interpolate {
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        #[arg(long, default_value_t = 4)]
        rows: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Time training iterations of a config (warm-up first; median and spread).
    Bench {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        batch: Option<usize>,
        /// Set both networks' width (g_width and d_width), e.g. 64 for the reference DCGAN.
        #[arg(long)]
        width: Option<usize>,
        /// Image size (32 or 64; DCGAN adds a layer on each side per doubling).
        #[arg(long)]
        image_size: Option<usize>,
        /// Image channels: 3 times a colour network (PyTorch's DCGAN-64 is 3x64x64), fed the
        /// grayscale data repeated in each channel.
        #[arg(long)]
        channels: Option<usize>,
        #[arg(long, default_value_t = 10)]
        iters: usize,
    },
    /// Train or use the engine's own image classifier.
    Classify {
        #[command(subcommand)]
        action: ClassifyAction,
    },
    /// The 1-D GAN of the lecture notes: x = z + θ against a logistic D; plots per stage.
    Toy {
        #[arg(long, default_value = "runs/toy")]
        out: PathBuf,
        #[arg(long, default_value_t = 400)]
        steps: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Steer samples toward a class: z moves along the gradient of a classifier's logit for the
    /// target (generator frozen); writes a grid with one trajectory per row.
    Control {
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long)]
        classifier: PathBuf,
        #[arg(long)]
        target: usize,
        #[arg(long, default_value_t = 8)]
        n: usize,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Distance z moves per step.
        #[arg(long, default_value_t = 0.5)]
        step_size: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Translate images with a CycleGAN checkpoint; writes the translations and a grid of
    /// input | translation | reconstruction rows.
    Translate {
        #[arg(long)]
        checkpoint: PathBuf,
        /// x2y (G) or y2x (F).
        #[arg(long)]
        direction: String,
        /// A folder of images (or an IDX file).
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Translate at most this many images.
        #[arg(long, default_value_t = 64)]
        limit: usize,
    },
    /// Fréchet distance, KID and precision/recall of a generator's samples against real images,
    /// in the features of the engine's classifier (compare runs on one dataset; not Inception-FID).
    Eval {
        #[arg(long)]
        checkpoint: PathBuf,
        /// Real images: an IDX file or a folder (held-out images, ideally).
        #[arg(long)]
        real: PathBuf,
        #[arg(long)]
        classifier: PathBuf,
        /// Images on each side.
        #[arg(long, default_value_t = 2000)]
        n: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// List the adapters found and the one chosen.
    Info,
}

#[derive(Subcommand)]
enum ClassifyAction {
    /// Train on a config's labelled data; report held-out accuracy.
    Train {
        #[arg(long)]
        config: PathBuf,
        /// Where to write the classifier (default runs/classifier.safetensors).
        #[arg(long, default_value = "runs/classifier.safetensors")]
        out: PathBuf,
        #[arg(long)]
        steps: Option<usize>,
    },
    /// A semi-supervised GAN's D as a classifier on held-out data, against the same network
    /// trained on the same labelled subset alone.
    SemiSupervised {
        /// The run folder (model.safetensors, state.safetensors, config.toml).
        #[arg(long)]
        run: PathBuf,
        /// Training steps of the supervised-only baseline.
        #[arg(long, default_value_t = 300)]
        baseline_steps: usize,
    },
    /// CycleGAN X -> Y: a Y-domain classifier's accuracy on the translations of X's labelled
    /// images, against its accuracy on the untranslated (resized) images.
    Translated {
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long)]
        classifier: PathBuf,
    },
    /// What the classifier makes of a generator's samples: how many are confidently some digit,
    /// and how they spread over the classes (mode coverage).
    Samples {
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long)]
        classifier: PathBuf,
        #[arg(long, default_value_t = 1000)]
        n: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// How often a conditional generator's samples of class K are classified as K.
    Conditional {
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long)]
        classifier: PathBuf,
        /// Samples per class.
        #[arg(long, default_value_t = 100)]
        n: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn gpu(cli: &Cli) -> Result<Gpu> {
    let mut options = GpuOptions::try_from_env()?;
    if let Some(a) = &cli.adapter {
        options.adapter_name = Some(a.clone());
    }
    options.force_cpu |= cli.cpu;
    let gpu = Gpu::new(&options)?;
    eprintln!("adapter: {}", describe(gpu.info()));
    Ok(gpu)
}

/// The error and its causes on one line, each cause once: errors that quote their cause in
/// their own message (`"{path}: {source}"`) would otherwise print it twice.
fn error_message(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if message.is_empty() {
            message = cause;
        } else if !message.contains(&cause) {
            message = format!("{message}: {cause}");
        }
    }
    message
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,wgpu_core=warn,wgpu_hal=warn,naga=warn"),
    )
    .init();
    let cli = Cli::parse();
    let shard = data_parallel_rank();
    // A buffer past the adapter's limits anywhere (a checkpoint's huge network, say) is an error.
    let outcome = shadergan::gpu::catch_device_limits(|| run_command(&cli, &shard))
        .unwrap_or_else(|e| Err(anyhow::anyhow!("{e}; lower the batch size, the widths or the image size")));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = error_message(&e);
            if let Some(c) = shard.collective() {
                // The other ranks wait in a collective for this one: end them all with its message.
                c.abort(&format!("error: {message}"));
            }
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// This process's rank when `mpirun` started several (feature `distributed`).
fn data_parallel_rank() -> train::Shard {
    #[cfg(feature = "distributed")]
    if let Some(mpi) = shadergan::distributed::Mpi::init() {
        // Held until main returns, which finalizes MPI (mpirun expects that even of one rank).
        return train::Shard::new(mpi);
    }
    train::Shard::single()
}

fn run_command(cli: &Cli, shard: &train::Shard) -> Result<()> {
    match &cli.command {
        Command::Info => info(cli),
        Command::Eval { checkpoint, real, classifier, n, seed } => {
            let q = tasks::sample_quality(&gpu(cli)?, checkpoint, real, classifier, *n, *seed)?;
            println!("{} samples against {} real images, {} classifier features:", q.images, q.images, q.dims);
            println!("frechet distance {:.4}", q.frechet);
            println!("KID              {:.6}", q.kid);
            println!("precision        {:.3}", q.precision);
            println!("recall           {:.3}", q.recall);
            Ok(())
        }
        Command::Bench { config, batch, width, image_size, channels, iters } => {
            let overrides =
                BenchOverrides { batch: *batch, width: *width, image_size: *image_size, channels: *channels };
            print!("{}", bench::bench_config(&gpu(cli)?, config, overrides, *iters)?);
            Ok(())
        }
        Command::Classify { action } => classify(cli, action),
        Command::Translate { checkpoint, direction, input, out, limit } => {
            let x_to_y = match direction.as_str() {
                "x2y" => true,
                "y2x" => false,
                other => bail!("--direction must be x2y or y2x, not '{other}'"),
            };
            let t = tasks::translate_images(&gpu(cli)?, checkpoint, x_to_y, input, *limit)?;
            t.write(out)?;
            println!(
                "translated {} images ({direction}) into {}; grid.png rows: input | translation | reconstruction",
                t.input.len() / (t.channels * t.size * t.size),
                out.display()
            );
            Ok(())
        }
        Command::Control { checkpoint, classifier, target, n, steps, step_size, seed, out } => {
            tasks::check_new_output(out)?;
            let s = tasks::steer_toward(&gpu(cli)?, checkpoint, classifier, *target, *n, *steps, *step_size, *seed)?;
            viz::save_png(out, &image::DynamicImage::ImageRgb8(s.grid), 2)?;
            let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
            println!(
                "classifier p(class {target}): {:.3} at the start, {:.3} after {steps} steps (mean over {n} samples)",
                mean(&s.trajectories.start_prob),
                mean(&s.trajectories.end_prob)
            );
            println!("wrote {} (one trajectory per row)", out.display());
            Ok(())
        }
        Command::Toy { out, steps, seed } => {
            let g = gpu(cli)?;
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            let r = shadergan::toy::run(&g, Some(out), *steps, *seed)?;
            for (i, t) in r.theta.iter().enumerate() {
                if i == 0 || (i + 1) % (steps / 8).max(1) == 0 {
                    println!("step {:>5}: theta = {t:+.4}", i + 1);
                }
            }
            println!("final D(x) = sigmoid({:.4} x + {:.4}); mean D(x) on real data {:.3}", r.w, r.b, r.d_real);
            println!(
                "wrote {} (black: data, green: generator, blue: D) and theta.png to {}",
                r.stage_files.join(", "),
                out.display()
            );
            Ok(())
        }
        Command::Train { config, steps, out, resume, quiet } => {
            let out = out.clone().unwrap_or_else(|| PathBuf::from("runs").join(config.file_stem().unwrap_or_default()));
            let options = run::RunOptions {
                config: config.clone(),
                steps: *steps,
                out: out.clone(),
                resume: *resume,
                progress: !quiet,
                shard: shard.clone(),
            };
            let summary = run::train(&gpu(cli)?, &options)?;
            if !shard.is_leader() {
                return Ok(());
            }
            println!(
                "trained {} steps in {:.0} s; run folder {} (grid.png, loss.png, report.html, model.safetensors)",
                summary.steps,
                summary.seconds,
                out.display()
            );
            Ok(())
        }
        Command::Sample { checkpoint, n, out, seed, truncation, class } => {
            let g = gpu(cli)?;
            let (config, generator) = train::load_generator(&g, checkpoint)?;
            let s = tasks::sample(&g, &config, &generator, *n, *seed, *truncation, *class)?;
            tasks::write_images(out, &s.images, config.data.channels, config.data.image_size, s.columns)?;
            println!("wrote {n} samples and grid.png to {}", out.display());
            Ok(())
        }
        Command::Interpolate { checkpoint, steps, rows, seed, out } => {
            tasks::check_new_output(out)?;
            let g = gpu(cli)?;
            let (config, generator) = train::load_generator(&g, checkpoint)?;
            let images = tasks::interpolate(&g, &config, &generator, *rows, *steps, *seed)?;
            let grid = viz::grid(&images, config.data.channels, config.data.image_size, *steps);
            viz::save_png(out, &image::DynamicImage::ImageRgb8(grid), 2)?;
            println!("wrote {} ({rows} linear rows, then {rows} spherical rows, {steps} steps each)", out.display());
            Ok(())
        }
    }
}

/// `shadergan info`: the adapters found, the one chosen, its kernel path and limits.
fn info(cli: &Cli) -> Result<()> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        bail!("{}", shadergan::gpu::no_adapter_error());
    }
    for a in &adapters {
        println!("found:  {}", describe(&a.get_info()));
    }
    let g = gpu(cli)?;
    println!("chosen: {}", describe(g.info()));
    let info = g.info();
    println!("subgroups: {} to {} invocations wide", info.subgroup_min_size, info.subgroup_max_size);
    println!("kernels: {}", g.kernel_path().reason);
    let l = g.limits();
    println!(
        "limits: max storage binding {} MiB, max buffer {} MiB, max workgroup invocations {}",
        l.max_storage_buffer_binding_size >> 20,
        l.max_buffer_size >> 20,
        l.max_compute_invocations_per_workgroup
    );
    Ok(())
}
