//! Buffers copied into textures for kernels that read an operand by `textureLoad`.
//!
//! Why: llvmpipe fetches one texel for all eight lanes of a SIMD vector in one call (a 16-byte
//! load per lane and a transpose) but compiles a storage load into a loop over the lanes, with
//! a branch and a bounds check per lane. On an AVX2 host a vec4 costs 1.3 ns per invocation
//! from a read-only storage texture, 1.7 from a sampled texture (whose fetch also handles mip
//! levels) and 15 from a storage buffer (examples/load_probe.rs). So operand textures are
//! Rgba32Float storage textures bound read-only. The copy is a memcpy, so it pays for itself
//! even for an operand read once (elementwise kernels), and many times over for a matrix
//! product's operands.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::{Gpu, GpuBuffer};

/// Free textures by size. A texture is checked out from its copy until its last handle goes:
/// the buffer's own (dropped when the buffer is written again or freed) and the readers' (held
/// until their dispatches are recorded; threads sharing a device record in between). After that
/// the next copy may reuse it, since wgpu orders a copy after the recorded reads of the texture.
#[derive(Default)]
pub(super) struct TextureCache {
    free: HashMap<(u32, u32), Vec<wgpu::TextureView>>,
    placeholder: Option<wgpu::TextureView>,
}

/// A buffer's copy as a texture, shared by every kernel that reads the buffer until the buffer
/// is written again or dropped (so a tensor read by several kernels is copied once); the
/// texture returns to the cache when the last handle is dropped, which must happen only after
/// the dispatches reading it are recorded.
#[derive(Clone)]
pub struct OperandTexture(Arc<TextureSlot>);

struct TextureSlot {
    view: wgpu::TextureView,
    size: (u32, u32),
    gpu: Gpu,
}

impl OperandTexture {
    pub fn view(&self) -> &wgpu::TextureView {
        &self.0.view
    }
}

impl Drop for TextureSlot {
    fn drop(&mut self) {
        self.gpu.0.textures.lock().unwrap().free.entry(self.size).or_default().push(self.view.clone());
    }
}

/// The texture copies of one buffer's current contents, by line length (floats per texel row).
#[derive(Default)]
pub(super) struct BufferCopies(Mutex<Vec<(usize, OperandTexture)>>);

impl BufferCopies {
    fn find(&self, line: usize) -> Option<OperandTexture> {
        self.0.lock().unwrap().iter().find(|(l, _)| *l == line).map(|(_, t)| t.clone())
    }

    fn keep(&self, line: usize, texture: &OperandTexture) {
        self.0.lock().unwrap().push((line, texture.clone()));
    }

    /// Forgets the copies: the buffer is about to be written.
    pub(super) fn invalidate(&self) {
        let stale = std::mem::take(&mut *self.0.lock().unwrap());
        drop(stale);
    }
}

/// Rows of a texture copy start at multiples of 256 bytes: lines of 64 floats.
const LINE_ALIGN: usize = (wgpu::COPY_BYTES_PER_ROW_ALIGNMENT / 4) as usize;

/// Below this many floats an elementwise kernel reads storage: a copy costs more than it saves.
const FLAT_MIN: usize = 4096;

/// How a kernel reads one buffer operand: from a texture copy (a flat one has rows of
/// 2^`shift` texels) or from its storage binding. The `Gpu::*_operand` methods are the one place
/// that decides, from the device's switches and the buffer's size and shape; a launcher passes
/// the operand to `Gpu::dispatch_with_textures` and sets its entry point's constant with
/// `Kernel::reading`, and nothing else.
pub struct Operand {
    texture: Option<OperandTexture>,
    shift: u32,
}

impl Operand {
    /// Read from storage (the entry point binds the placeholder texture).
    pub fn storage() -> Operand {
        Operand { texture: None, shift: 0 }
    }

    /// Whether the kernel reads the texture copy.
    pub fn textured(&self) -> bool {
        self.texture.is_some()
    }

    /// The operand where it is read from a texture, None where from storage (for kernels that
    /// read it only from its texture).
    pub fn textured_only(self) -> Option<Operand> {
        self.textured().then_some(self)
    }

    /// Row length of a flat copy, log2 texels (0 when read from storage).
    pub fn shift(&self) -> u32 {
        self.shift
    }

    fn view(&self, gpu: &Gpu) -> wgpu::TextureView {
        self.texture.as_ref().map(|t| t.view().clone()).unwrap_or_else(|| gpu.placeholder_texture())
    }
}

impl Gpu {
    /// A flat operand for elementwise-style kernels (`flat_texture`): its copy where one is
    /// worth making, else storage.
    pub fn flat_operand(&self, buf: &GpuBuffer) -> Operand {
        match self.flat_texture(buf) {
            Some((texture, shift)) => Operand { texture: Some(texture), shift },
            None => Operand::storage(),
        }
    }

    /// A flat operand for kernels that read it only from its texture: None where no copy can
    /// be made (the caller takes another path).
    pub fn flat_operand_any_size(&self, buf: &GpuBuffer) -> Option<Operand> {
        let (texture, shift) = self.flat_texture_any_size(buf)?;
        Some(Operand { texture: Some(texture), shift })
    }

    /// An operand read as rows of `line` floats from its copy (`buffer_texture`), or from
    /// storage where no copy can be made.
    pub fn line_operand(&self, buf: &GpuBuffer, line: usize) -> Operand {
        Operand { texture: self.buffer_texture(buf, line), shift: 0 }
    }

    /// The views to bind for `operands`, in order.
    pub(super) fn operand_views(&self, operands: &[&Operand]) -> Vec<wgpu::TextureView> {
        operands.iter().map(|o| o.view(self)).collect()
    }

    /// Records a copy of `buf`, read as rows of `line` floats, into an Rgba32Float texture
    /// whose texel (x, y) holds the row's floats 4x..4x+3, and returns the texture; or returns
    /// the copy made earlier, if `buf` has not been written since.
    /// None where the copy is impossible: `line` not a multiple of 64 floats, `buf` not whole
    /// rows, or a side past the device's texture size limit; always None with
    /// `GpuOptions::no_texture_operands`.
    fn buffer_texture(&self, buf: &GpuBuffer, line: usize) -> Option<OperandTexture> {
        if self.0.no_texture_operands
            || line == 0
            || !line.is_multiple_of(LINE_ALIGN)
            || buf.len == 0
            || !buf.len.is_multiple_of(line)
        {
            return None;
        }
        let max = self.0.limits.max_texture_dimension_2d as usize;
        let (width, height) = (line / 4, buf.len / line);
        if width > max || height > max {
            return None;
        }
        if let Some(copy) = buf.copies.find(line) {
            return Some(copy);
        }
        let size = wgpu::Extent3d { width: width as u32, height: height as u32, depth_or_array_layers: 1 };
        let view = self.take_texture(size);
        let texture = view.texture();
        // Lock order: profile, then recorder (as in `Gpu::dispatch_with_textures`).
        let mut profile = self.0.profile.lock().unwrap();
        let mut rec = self.0.recorder.lock().unwrap();
        rec.pass = None;
        buf.epoch.store(rec.epoch, Ordering::Relaxed);
        // Copies are profiled too: an empty pass stamps its end before the copy and another
        // its start after it (timestamps outside passes need a further device feature).
        let pair = profile.as_mut().and_then(|p| p.timestamps.as_mut()).map(|ts| {
            let pair = ts.claim_pair(format!("copy:buffer->texture [{width}x{height} texels]"));
            stamp_empty_pass(rec.encoder_mut(&self.0.device), &ts.set, None, Some(2 * pair));
            pair
        });
        rec.encoder_mut(&self.0.device).copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo {
                buffer: buf.raw(),
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some((line * 4) as u32),
                    rows_per_image: Some(height as u32),
                },
            },
            wgpu::TexelCopyTextureInfo {
                texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            size,
        );
        if let (Some(pair), Some(ts)) = (pair, profile.as_mut().and_then(|p| p.timestamps.as_mut())) {
            stamp_empty_pass(rec.encoder_mut(&self.0.device), &ts.set, Some(2 * pair + 1), None);
            let full = ts.is_full();
            drop(rec);
            if full {
                self.read_timestamps(profile.as_mut().expect("stamped only while profiling"));
            }
        }
        let copy = OperandTexture(Arc::new(TextureSlot { view, size: (size.width, size.height), gpu: self.clone() }));
        buf.copies.keep(line, &copy);
        Some(copy)
    }

    /// A copy of a whole buffer read as one flat run of floats, for elementwise kernels: rows of
    /// 2^s texels (the widest power of two that divides the buffer and fits the device, at
    /// least 64 floats), so texel q sits at (q & (2^s - 1), q >> s) and kernels find it with
    /// shifts (llvmpipe has no vector integer division). Returns the copy and s; None for
    /// buffers below `FLAT_MIN` floats (storage reads cost less than the copy there) or of no
    /// such row length.
    fn flat_texture(&self, buf: &GpuBuffer) -> Option<(OperandTexture, u32)> {
        if buf.len < FLAT_MIN {
            return None;
        }
        self.flat_texture_any_size(buf)
    }

    /// `flat_texture` for kernels that read the operand only from its texture, so small buffers
    /// get a copy too.
    fn flat_texture_any_size(&self, buf: &GpuBuffer) -> Option<(OperandTexture, u32)> {
        if !buf.len.is_multiple_of(LINE_ALIGN) {
            return None;
        }
        let max = self.0.limits.max_texture_dimension_2d as usize;
        let texels = buf.len / 4;
        let shift = texels.trailing_zeros().min(max.ilog2());
        let texture = self.buffer_texture(buf, 4 << shift)?;
        Some((texture, shift))
    }

    /// A 1x1 texture for entry points that bind a texture they do not read in their mode.
    fn placeholder_texture(&self) -> wgpu::TextureView {
        let mut cache = self.0.textures.lock().unwrap();
        cache
            .placeholder
            .get_or_insert_with(|| self.new_texture(wgpu::Extent3d { width: 1, height: 1, depth_or_array_layers: 1 }))
            .clone()
    }

    fn take_texture(&self, size: wgpu::Extent3d) -> wgpu::TextureView {
        if let Some(view) =
            self.0.textures.lock().unwrap().free.get_mut(&(size.width, size.height)).and_then(|v| v.pop())
        {
            return view;
        }
        let view = self.new_texture(size);
        let bytes = size.width as u64 * size.height as u64 * 16;
        let mut pool = self.0.pool.lock().unwrap();
        pool.live_bytes += bytes;
        pool.peak_bytes = pool.peak_bytes.max(pool.live_bytes + pool.pooled_bytes);
        view
    }

    fn new_texture(&self, size: wgpu::Extent3d) -> wgpu::TextureView {
        let texture = self.0.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("operand texture"),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        texture.create_view(&wgpu::TextureViewDescriptor::default())
    }
}

fn stamp_empty_pass(encoder: &mut wgpu::CommandEncoder, set: &wgpu::QuerySet, start: Option<u32>, end: Option<u32>) {
    encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: None,
        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
            query_set: set,
            beginning_of_pass_write_index: start,
            end_of_pass_write_index: end,
        }),
    });
}
