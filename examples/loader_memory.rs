//! Peak memory of the two image loaders on a large folder: the in-memory loader (every image
//! decoded into f32 up front) against the streaming folder (`data.streaming = true`).
//!
//!   cargo run --release --example loader_memory -- make /tmp/big-folder 100000
//!   cargo run --release --example loader_memory -- memory /tmp/big-folder
//!   cargo run --release --example loader_memory -- stream /tmp/big-folder
//!
//! `make` writes that many distinct 64x64 colour PNGs (random disks on gradients) in ten class
//! sub-folders. `memory` and `stream` each load the folder at 64x64x3 and draw 200 batches of 64,
//! then print the process's peak resident memory (VmHWM) and the time taken. Run each in its own
//! process, so one peak does not hide the other.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use rand::{Rng, SeedableRng};
use shadergan::data::{load_folder, BatchSampler, ImageSource, StreamOptions, StreamingFolder};

const SIZE: usize = 64;
const BATCH: usize = 64;
const BATCHES: usize = 200;

fn peak_resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

/// Image `i`: four random disks over a gradient, in class folder `i % 10`.
fn write_image(dir: &Path, i: usize) -> anyhow::Result<()> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(i as u64);
    let disks: Vec<(f32, f32, f32, [u8; 3])> = (0..4)
        .map(|_| (rng.random_range(0.0..64.0), rng.random_range(0.0..64.0), rng.random_range(4.0..20.0), rng.random()))
        .collect();
    let img = image::RgbImage::from_fn(SIZE as u32, SIZE as u32, |x, y| {
        let (xf, yf) = (x as f32, y as f32);
        disks
            .iter()
            .find(|(cx, cy, r, _)| (xf - cx).powi(2) + (yf - cy).powi(2) < r * r)
            .map_or(image::Rgb([(x * 4) as u8, (y * 4) as u8, 128]), |d| image::Rgb(d.3))
    });
    let class = dir.join(format!("class{}", i % 10));
    std::fs::create_dir_all(&class).with_context(|| format!("creating {}", class.display()))?;
    let path = class.join(format!("{i:06}.png"));
    img.save(&path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn make(dir: &Path, n: usize) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map_or(2, |t| t.get());
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..threads)
            .map(|t| s.spawn(move || (t..n).step_by(threads).try_for_each(|i| write_image(dir, i))))
            .collect();
        writers.into_iter().try_for_each(|w| w.join().map_err(|_| anyhow::anyhow!("a writer thread panicked"))?)
    })?;
    println!("wrote {n} images of {SIZE}x{SIZE} under {}", dir.display());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: loader_memory make DIR N | memory DIR | stream DIR";
    let (mode, dir) = match args.as_slice() {
        [m, d, ..] => (m.as_str(), Path::new(d)),
        _ => anyhow::bail!("{usage}"),
    };
    let started = Instant::now();
    let source: Box<dyn ImageSource> = match mode {
        "make" => {
            let n = args.get(2).and_then(|v| v.parse().ok()).ok_or_else(|| anyhow::anyhow!("{usage}"))?;
            return make(dir, n);
        }
        "memory" => Box::new(load_folder(dir, SIZE, 3)?),
        "stream" => Box::new(StreamingFolder::open(dir, SIZE, 3, 0, StreamOptions::default())?),
        _ => anyhow::bail!("{usage}"),
    };
    let opened = started.elapsed().as_secs_f64();
    let mut sampler = BatchSampler::new(source.count(), 1);
    let mut checksum = 0.0f64;
    for _ in 0..BATCHES {
        let (pixels, _) = source.next_batch(&mut sampler, BATCH)?;
        checksum += pixels.iter().map(|&v| v as f64).sum::<f64>();
    }
    println!(
        "{mode}: {} images, ready after {opened:.1} s, {BATCHES} batches of {BATCH} after {:.1} s, peak resident {:.0} MiB (checksum {checksum:.3})",
        source.count(),
        started.elapsed().as_secs_f64(),
        peak_resident_mib()
    );
    Ok(())
}
