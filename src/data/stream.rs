//! An image folder decoded from disk as training goes, for folders larger than memory: only the
//! file list stays resident, and a background thread decodes the sampler's next batches (with
//! several decoding threads each). It takes one of `prefetch` slots before it decodes a batch
//! and the trainer frees it when it takes the batch, so at most `prefetch` batches are decoded
//! (or being decoded) and not yet handed out, by construction.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::folder::{decode_image, list_images, planes, LabelledFile};
use super::{BatchSampler, DataError, ImageSource};

/// How a [`StreamingFolder`] reads ahead.
#[derive(Clone, Copy, Debug)]
pub struct StreamOptions {
    /// Batches decoded (or being decoded) ahead of the trainer, at most (at least 1).
    pub prefetch: usize,
    /// Threads decoding one batch (at least 1).
    pub threads: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions { prefetch: 2, threads: std::thread::available_parallelism().map_or(2, |n| n.get()).min(8) }
    }
}

/// An image folder (class sub-folders give labels) whose images are decoded when a batch needs
/// them; [`ImageSource::next_batch`] hands out batches a background thread decoded ahead.
pub struct StreamingFolder {
    files: Arc<Vec<PathBuf>>,
    labels: Option<Vec<u32>>,
    class_names: Vec<String>,
    channels: usize,
    size: usize,
    colour: bool,
    options: StreamOptions,
    ahead: Mutex<Option<ReadAhead>>,
    /// The most batches ever decoded ahead at once (for tests and reports).
    most_ahead: Arc<AtomicUsize>,
}

/// The read-ahead's budget: batches decoded or being decoded and not yet handed out.
struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
    limit: usize,
}

impl Slots {
    /// Waits for a free slot and takes it; None once `stop` is set.
    fn take(&self, stop: &AtomicBool) -> Option<usize> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= self.limit && !stop.load(Ordering::Relaxed) {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        *used += 1;
        Some(*used)
    }

    fn give_back(&self) {
        *self.used.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.freed.notify_all();
    }
}

/// A batch's image indices, pixels and labels.
type DecodedBatch = (Vec<usize>, Vec<f32>, Vec<u32>);

/// The background reader: it produces the batches a sampler at `next` would draw, in order.
struct ReadAhead {
    next: (u64, u64, usize, usize),
    batches: Receiver<Result<DecodedBatch, DataError>>,
    stop: Arc<AtomicBool>,
    slots: Arc<Slots>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // Wake a reader waiting for a slot; one decoding finishes its batch first.
        self.stop.store(true, Ordering::Relaxed);
        self.slots.freed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl StreamingFolder {
    /// Lists the images under `dir` (the first `limit`, 0 for all) and checks each file's header,
    /// so a file that is not an image is named now rather than hours into a run.
    pub fn open(
        dir: &Path,
        size: usize,
        channels: usize,
        limit: usize,
        options: StreamOptions,
    ) -> Result<StreamingFolder, DataError> {
        if channels != 1 && channels != 3 {
            return Err(DataError::invalid(dir, format!("channels must be 1 or 3, not {channels}")));
        }
        if options.prefetch == 0 || options.threads == 0 {
            return Err(DataError::invalid(dir, "streaming needs prefetch and threads of at least 1"));
        }
        let (mut files, class_names) = list_images(dir)?;
        if limit > 0 {
            files.truncate(limit);
        }
        let chunk = files.len().div_ceil(options.threads);
        std::thread::scope(|s| {
            let checks: Vec<_> =
                files.chunks(chunk).map(|c| s.spawn(move || c.iter().try_for_each(check_header))).collect();
            checks.into_iter().try_for_each(|c| c.join().expect("header check panicked"))
        })?;
        // As the in-memory loader: a gray set must not mix in colour images (see `load_folder`).
        let colour = decode_image(&files[0].0)?.color().has_color();
        let labels = (!class_names.is_empty()).then(|| files.iter().map(|(_, l)| l.unwrap_or(0)).collect());
        Ok(StreamingFolder {
            files: Arc::new(files.into_iter().map(|(p, _)| p).collect()),
            labels,
            class_names,
            channels,
            size,
            colour,
            options,
            ahead: Mutex::new(None),
            most_ahead: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The most batches ever decoded (or being decoded) ahead of the trainer at once: at most
    /// `prefetch`.
    pub fn most_ahead(&self) -> usize {
        self.most_ahead.load(Ordering::Relaxed)
    }

    fn start(&self, sampler: &BatchSampler, batch: usize) -> ReadAhead {
        let (seed, epoch, cursor) = sampler.position();
        let mut own = BatchSampler::at(self.files.len(), seed, epoch, cursor);
        // The slots bound the queue, so the channel itself need not.
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let slots = Arc::new(Slots { used: Mutex::new(0), freed: Condvar::new(), limit: self.options.prefetch });
        let (files, labels, stopped, most) =
            (self.files.clone(), self.labels.clone(), stop.clone(), self.most_ahead.clone());
        let (size, channels, colour, threads) = (self.size, self.channels, self.colour, self.options.threads);
        let budget = slots.clone();
        let thread = std::thread::spawn(move || {
            while let Some(ahead) = budget.take(&stopped) {
                most.fetch_max(ahead, Ordering::Relaxed);
                let indices = own.next_indices(batch);
                let decoded = decode_batch(&files, &indices, size, channels, colour, threads);
                let item = decoded.map(|pixels| {
                    let l = labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect()).unwrap_or_default();
                    (indices, pixels, l)
                });
                let failed = item.is_err();
                if tx.send(item).is_err() || failed {
                    return;
                }
            }
        });
        ReadAhead { next: (seed, epoch, cursor, batch), batches: rx, stop, slots, thread: Some(thread) }
    }
}

fn check_header(entry: &LabelledFile) -> Result<(), DataError> {
    let path = &entry.0;
    image::ImageReader::open(path)
        .map_err(|source| DataError::Io { path: path.clone(), source })?
        .with_guessed_format()
        .map_err(|source| DataError::Io { path: path.clone(), source })?
        .into_dimensions()
        .map(|_| ())
        .map_err(|e| DataError::invalid(path, format!("cannot read the image header: {e}")))
}

/// Decodes `indices` into one [batch, C, H, W] buffer, `threads` images at a time.
fn decode_batch(
    files: &[PathBuf],
    indices: &[usize],
    size: usize,
    channels: usize,
    colour: bool,
    threads: usize,
) -> Result<Vec<f32>, DataError> {
    let per_image = channels * size * size;
    let mut pixels = vec![0f32; indices.len() * per_image];
    let chunk = indices.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let jobs: Vec<_> = pixels
            .chunks_mut(chunk * per_image)
            .zip(indices.chunks(chunk))
            .map(|(out, idx)| {
                s.spawn(move || {
                    for (slot, &i) in out.chunks_mut(per_image).zip(idx) {
                        let img = decode_image(&files[i])?;
                        if channels == 1 && img.color().has_color() != colour {
                            return Err(DataError::invalid(
                                &files[i],
                                "is gray where the folder's first image is colour (or the reverse): images of mixed channels",
                            ));
                        }
                        slot.copy_from_slice(&planes(&img, size, channels));
                    }
                    Ok(())
                })
            })
            .collect();
        jobs.into_iter().try_for_each(|j| j.join().expect("decoding thread panicked"))
    })?;
    Ok(pixels)
}

impl ImageSource for StreamingFolder {
    fn count(&self) -> usize {
        self.files.len()
    }
    fn channels(&self) -> usize {
        self.channels
    }
    fn size(&self) -> usize {
        self.size
    }
    fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }

    fn gather(&self, indices: &[usize]) -> Result<(Vec<f32>, Vec<u32>), DataError> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.files.len()) {
            return Err(DataError::invalid(
                &self.files[0],
                format!("image {bad} asked of a folder of {}", self.files.len()),
            ));
        }
        let pixels = decode_batch(&self.files, indices, self.size, self.channels, self.colour, self.options.threads)?;
        let labels = self.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect()).unwrap_or_default();
        Ok((pixels, labels))
    }

    fn next_batch(&self, sampler: &mut BatchSampler, batch: usize) -> Result<(Vec<f32>, Vec<u32>), DataError> {
        let mut ahead = self.ahead.lock().unwrap_or_else(|e| e.into_inner());
        let (seed, epoch, cursor) = sampler.position();
        // A sampler that jumped (a resume, another batch size) restarts the reader where it stands.
        if ahead.as_ref().is_none_or(|a| a.next != (seed, epoch, cursor, batch)) {
            *ahead = None;
            *ahead = Some(self.start(sampler, batch));
        }
        let reader = ahead.as_mut().expect("started above");
        let received = reader.batches.recv();
        if received.is_ok() {
            reader.slots.give_back();
        }
        let (indices, pixels, labels) = match received {
            Ok(Ok(item)) => item,
            Ok(Err(e)) => {
                *ahead = None;
                return Err(e);
            }
            Err(_) => {
                *ahead = None;
                return Err(DataError::invalid(&self.files[0], "the background image reader stopped"));
            }
        };
        let expected = sampler.next_indices(batch);
        if expected != indices {
            // Cannot happen while both samplers follow one seed; decode directly rather than
            // hand out the wrong images.
            *ahead = None;
            return self.gather(&expected);
        }
        let (seed, epoch, cursor) = sampler.position();
        reader.next = (seed, epoch, cursor, batch);
        Ok((pixels, labels))
    }
}
