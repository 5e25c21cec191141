//! The blocking edge of the engine: waiting for the device and reading buffers back. Everything
//! else records work without waiting, so a platform whose GPU cannot be waited on synchronously
//! (WebGPU in a browser) needs an async form of these functions only.

use super::{Gpu, GpuBuffer};

impl Gpu {
    /// Submits pending work and waits for the device to finish it.
    pub fn synchronize(&self) {
        self.flush();
        self.wait_idle();
    }

    /// Waits for everything submitted; pipelines compile at their first dispatch, so new ones
    /// have reached the pipeline cache by now and it is written out.
    pub(super) fn wait_idle(&self) {
        let _ = self.0.device.poll(wgpu::PollType::wait_indefinitely());
        if let Some(cache) = &self.0.pipeline_cache {
            cache.save_if_dirty();
        }
    }

    /// Reads a buffer back to the host (submits pending work and waits).
    pub fn read(&self, buf: &GpuBuffer) -> Vec<f32> {
        if buf.len == 0 {
            return vec![];
        }
        let bytes = self.read_raw(buf.raw(), (buf.len * 4) as u64);
        bytemuck::cast_slice::<u8, f32>(&bytes).to_vec()
    }

    /// The first `bytes` of a COPY_SRC buffer, after everything recorded so far has run.
    pub(super) fn read_raw(&self, buffer: &wgpu::Buffer, bytes: u64) -> Vec<u8> {
        let staging = self.0.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            let mut rec = self.0.recorder.lock().unwrap();
            rec.pass = None;
            let encoder = rec.encoder_mut(&self.0.device);
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
        }
        self.flush();
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait_idle();
        rx.recv().expect("map callback dropped").expect("mapping a readback buffer failed");
        let data = {
            let view = staging.slice(..).get_mapped_range().expect("readback buffer not mapped");
            view.to_vec()
        };
        staging.unmap();
        data
    }
}
