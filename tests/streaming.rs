//! The streaming image folder against the in-memory loader: the same batches for the same
//! sampler (across epochs, after a jump, with transparent images), a bounded read-ahead, clear
//! errors for broken files, and a GAN run that streams matching one that loads everything.

mod common;
use common::*;
use shadergan::data::{load_folder, BatchSampler, ImageSource, StreamOptions, StreamingFolder};

/// `n` images of odd sizes in three class folders, some with an alpha channel.
fn image_folder(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..n {
        let class = dir.path().join(["ants", "bees", "cows"][i % 3]);
        std::fs::create_dir_all(&class).unwrap();
        let (w, h) = (9 + (i % 5) as u32, 7 + (i % 4) as u32);
        let path = class.join(format!("{i:03}.png"));
        if i % 4 == 0 {
            image::RgbaImage::from_fn(w, h, |x, y| {
                image::Rgba([(x * 20) as u8, (i * 7) as u8, (y * 30) as u8, (x * y * 9) as u8])
            })
            .save(path)
            .unwrap();
        } else {
            image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 25) as u8, (y * 17) as u8, (i * 11) as u8]))
                .save(path)
                .unwrap();
        }
    }
    dir
}

fn options(prefetch: usize, threads: usize) -> StreamOptions {
    StreamOptions { prefetch, threads }
}

#[test]
fn streamed_batches_equal_in_memory_batches_across_epochs_and_jumps() {
    let dir = image_folder(23);
    let memory = load_folder(dir.path(), 8, 3).unwrap();
    let stream = StreamingFolder::open(dir.path(), 8, 3, 0, options(3, 2)).unwrap();
    assert_eq!((stream.count(), stream.channels(), stream.size()), (23, 3, 8));
    assert_eq!(stream.labels(), memory.labels.as_deref());
    assert_eq!(stream.class_names(), memory.class_names.as_slice());

    // Batch 5 of 23 images: four batches per epoch and a skipped tail, six epochs.
    let (mut a, mut b) = (BatchSampler::new(23, 9), BatchSampler::new(23, 9));
    for step in 0..24 {
        let want = memory.next_batch(&mut a, 5).unwrap();
        let got = stream.next_batch(&mut b, 5).unwrap();
        assert_eq!(got.1, want.1, "labels of batch {step}");
        assert_close(&format!("pixels of batch {step}"), &got.0, &f64s(&want.0), 0.0, 1e-7);
        assert_eq!(a.position(), b.position());
    }
    // A resumed sampler (a jump backwards) and another batch size restart the read-ahead.
    let (mut a, mut b) = (BatchSampler::at(23, 9, 2, 10), BatchSampler::at(23, 9, 2, 10));
    for batch in [5, 5, 7, 3] {
        let want = memory.next_batch(&mut a, batch).unwrap();
        let got = stream.next_batch(&mut b, batch).unwrap();
        assert_close(&format!("pixels after the jump, batch {batch}"), &got.0, &f64s(&want.0), 0.0, 1e-7);
    }
    assert!(stream.most_ahead() <= 3, "{} batches were decoded ahead, prefetch is 3", stream.most_ahead());
}

#[test]
fn transparent_pixels_are_composited_onto_white() {
    let dir = tempfile::tempdir().unwrap();
    // Alpha 0 over black, alpha 255 red, alpha 128 black (half-way to white).
    let img = image::RgbaImage::from_fn(3, 1, |x, _| match x {
        0 => image::Rgba([0, 0, 0, 0]),
        1 => image::Rgba([255, 0, 0, 255]),
        _ => image::Rgba([0, 0, 0, 128]),
    });
    img.save(dir.path().join("a.png")).unwrap();
    let d = shadergan::data::decode_image(&dir.path().join("a.png")).unwrap().to_rgb8();
    let grey = (255.0 * 127.0 / 255.0_f64).round() as u8;
    assert_eq!(d.get_pixel(0, 0).0, [255, 255, 255]);
    assert_eq!(d.get_pixel(1, 0).0, [255, 0, 0]);
    assert!(d.get_pixel(2, 0).0.iter().all(|&v| v.abs_diff(grey) <= 1), "{:?}", d.get_pixel(2, 0));
}

#[test]
fn the_read_ahead_stays_bounded_while_training_is_slow() {
    let dir = image_folder(40);
    let stream = StreamingFolder::open(dir.path(), 8, 3, 0, options(2, 1)).unwrap();
    let mut s = BatchSampler::new(40, 1);
    for _ in 0..6 {
        stream.next_batch(&mut s, 4).unwrap();
        // A slow step: the reader fills its queue and must wait.
        std::thread::sleep(std::time::Duration::from_millis(40));
    }
    // On a loaded machine the reader may lag; give it time to fill what it is allowed to.
    let waited = std::time::Instant::now();
    while stream.most_ahead() < 2 && waited.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let most = stream.most_ahead();
    assert_eq!(most, 2, "a slow consumer lets the reader fill its 2 slots, and no more");
}

#[test]
fn broken_files_are_named_at_open_or_when_read() {
    let dir = image_folder(6);
    std::fs::write(dir.path().join("ants/zz.png"), b"not an image").unwrap();
    let e =
        StreamingFolder::open(dir.path(), 8, 3, 0, options(2, 2)).err().expect("a text file is refused").to_string();
    assert!(e.contains("zz.png") && e.contains("header"), "{e}");

    // A file whose header is fine but whose pixels are cut off fails when its batch is decoded.
    let dir = image_folder(6);
    let victim = dir.path().join("bees/001.png");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let stream = StreamingFolder::open(dir.path(), 8, 3, 0, options(2, 2)).unwrap();
    let mut s = BatchSampler::new(6, 0);
    let e = stream.next_batch(&mut s, 6).unwrap_err().to_string();
    assert!(e.contains("001.png") && e.contains("decode"), "{e}");

    let e = StreamingFolder::open(dir.path(), 8, 2, 0, options(2, 2)).err().unwrap().to_string();
    assert!(e.contains("channels must be 1 or 3"), "{e}");
    let e = StreamingFolder::open(dir.path(), 8, 3, 0, options(0, 2)).err().unwrap().to_string();
    assert!(e.contains("at least 1"), "{e}");
}

#[test]
fn a_streaming_gan_run_matches_one_that_loads_everything() {
    let gpu = gpu();
    let data_dir = image_folder(24);
    let work = tempfile::tempdir().unwrap();
    let mut config = tiny_dcgan();
    config.data.kind = shadergan::config::DataKind::Folder;
    (config.data.images, config.data.labels, config.data.limit) = (data_dir.path().to_path_buf(), None, 0);
    (config.data.channels, config.data.image_size) = (3, 16);
    (config.train.steps, config.train.batch_size, config.train.sample_every, config.train.checkpoint_every) =
        (5, 8, 0, 3);
    let run = |config: &shadergan::config::Config, name: &str, streaming: bool, steps: u64, resume: bool| {
        let mut c = config.clone();
        (c.data.streaming, c.data.prefetch, c.data.decode_threads) = (streaming, 2, 2);
        let path = work.path().join(format!("{name}.toml"));
        std::fs::write(&path, c.to_toml()).unwrap();
        let opts = shadergan::train::run::RunOptions {
            config: path,
            steps: Some(steps),
            out: work.path().join(name),
            resume,
            progress: false,
            shard: shadergan::train::Shard::single(),
        };
        shadergan::train::run::train(&gpu, &opts).unwrap();
        std::fs::read_to_string(work.path().join(name).join("metrics.csv")).unwrap()
    };
    let memory = run(&config, "memory", false, 5, false);
    let streamed = run(&config, "streamed", true, 5, false);
    assert_eq!(streamed, memory, "the streamed run's losses differ from the in-memory run's");
    // Stopped at step 3 and resumed with streaming: the read-ahead restarts at the saved position.
    run(&config, "resumed", true, 3, false);
    let resumed = run(&config, "resumed", true, 5, true);
    assert_eq!(resumed, memory, "a resumed streaming run differs");

    // The semi-supervised GAN draws its few labelled images from the streaming folder too.
    (config.model.kind, config.model.classes, config.train.labelled_per_class) =
        (shadergan::config::GanKind::SemiSupervised, 3, 2);
    let memory = run(&config, "ss-memory", false, 3, false);
    assert_eq!(run(&config, "ss-streamed", true, 3, false), memory, "the streamed semi-supervised run differs");
}
