//! The buffer pool: storage buffers of f32 by size class, recycled when dropped, and host
//! uploads and buffer-to-buffer copies in order with the recorded work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{texture, Gpu, GpuInner};

#[derive(Default)]
pub(super) struct Pool {
    pub(super) free: HashMap<u64, Vec<(wgpu::Buffer, u64)>>,
    pub(super) live_bytes: u64,
    pub(super) pooled_bytes: u64,
    pub(super) peak_bytes: u64,
}

/// A pooled storage buffer of `len` f32 values; returns to the pool when dropped.
pub struct GpuBuffer {
    pub(super) buffer: Option<wgpu::Buffer>,
    pub(super) len: usize,
    pub(super) epoch: AtomicU64,
    /// Texture copies of the current contents (see `Operand`); cleared by every write.
    pub(super) copies: texture::BufferCopies,
    pub(super) gpu: Arc<GpuInner>,
}

/// Pool size classes: four per octave, so a reused buffer wastes at most ~19%.
fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(256);
    let pow = 63 - (bytes - 1).leading_zeros() as u64; // 2^pow < bytes <= 2^(pow+1)
    let base = 1u64 << pow;
    let step = (base / 4).max(64);
    bytes.div_ceil(step) * step
}

impl Gpu {
    /// A buffer of `len` f32 with unspecified contents (a recycled one when the pool has it).
    pub fn alloc(&self, len: usize) -> GpuBuffer {
        let bytes = size_class(len as u64 * 4);
        let limit = self.0.limits.max_storage_buffer_binding_size;
        if len as u64 * 4 > limit {
            super::limits::refuse(len as u64 * 4, limit);
        }
        let bytes = bytes.min(limit.max(len as u64 * 4));
        let mut pool = self.0.pool.lock().unwrap();
        let (buffer, epoch) = match pool.free.get_mut(&bytes).and_then(|v| v.pop()) {
            Some(found) => {
                pool.pooled_bytes -= bytes;
                found
            }
            None => {
                self.0.buffers_created.fetch_add(1, Ordering::Relaxed);
                let buffer = self.0.device.create_buffer(&wgpu::BufferDescriptor {
                    label: None,
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                (buffer, 0)
            }
        };
        pool.live_bytes += bytes;
        pool.peak_bytes = pool.peak_bytes.max(pool.live_bytes + pool.pooled_bytes);
        GpuBuffer {
            buffer: Some(buffer),
            len,
            epoch: AtomicU64::new(epoch),
            copies: texture::BufferCopies::default(),
            gpu: self.0.clone(),
        }
    }

    /// Copies host data into a new buffer.
    pub fn upload(&self, data: &[f32]) -> GpuBuffer {
        let buf = self.alloc(data.len());
        if !data.is_empty() {
            // queue.write_buffer lands before the next submit's commands, so a recycled buffer
            // that pending commands still read must see those commands submitted first.
            if buf.epoch.load(Ordering::Relaxed) == self.0.recorder.lock().unwrap().epoch {
                self.flush();
            }
            self.0.queue.write_buffer(buf.raw(), 0, bytemuck::cast_slice(data));
        }
        buf
    }

    /// Records dst <- src for buffers of the same length, in order with the recorded work: a
    /// buffer copy (a memcpy on lavapipe), not a kernel pass.
    pub fn copy_buffer(&self, src: &GpuBuffer, dst: &GpuBuffer) {
        assert_eq!(src.len, dst.len, "copy between buffers of different lengths");
        if src.len == 0 {
            return;
        }
        dst.copies.invalidate();
        let mut rec = self.0.recorder.lock().unwrap();
        rec.pass = None;
        src.epoch.store(rec.epoch, Ordering::Relaxed);
        dst.epoch.store(rec.epoch, Ordering::Relaxed);
        rec.encoder_mut(&self.0.device).copy_buffer_to_buffer(src.raw(), 0, dst.raw(), 0, (src.len * 4) as u64);
    }
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer({} f32)", self.len)
    }
}

impl GpuBuffer {
    /// Its length in f32 values.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether it holds no values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The wgpu buffer (whole size classes: it may be longer than `len`).
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer already released")
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            let bytes = buffer.size();
            let mut pool = self.gpu.pool.lock().unwrap();
            pool.live_bytes -= bytes;
            pool.pooled_bytes += bytes;
            pool.free.entry(bytes).or_default().push((buffer, self.epoch.load(Ordering::Relaxed)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_cover_request_with_bounded_waste() {
        for bytes in [1u64, 4, 255, 256, 257, 1000, 4096, 4097, 1 << 20, (1 << 20) + 1, 123_456_789] {
            let c = size_class(bytes);
            assert!(c >= bytes, "{bytes} -> {c}");
            assert!(c as f64 <= (bytes.max(256) as f64) * 1.26 + 64.0, "{bytes} -> {c}");
            assert_eq!(c % 4, 0);
        }
    }
}
