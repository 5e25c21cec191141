//! The waiting edge of the engine: the device finishing its work and buffers coming back to the
//! host. Everything else records work without waiting. A read starts as a [`PendingRead`],
//! which native code waits for (`read`, `Tensor::to_vec`) and async code awaits (`read_async`,
//! `Tensor::to_vec_async`): in a browser a WebGPU map completes only once the page's event loop
//! runs, so there nothing may block.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

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
        floats(self.begin_read(buf.raw(), (buf.len * 4) as u64).wait())
    }

    /// `read` without blocking: the values once the device has produced them.
    pub async fn read_async(&self, buf: &GpuBuffer) -> Vec<f32> {
        if buf.len == 0 {
            return vec![];
        }
        floats(self.begin_read(buf.raw(), (buf.len * 4) as u64).await)
    }

    /// Starts reading a (non-empty) buffer back and returns at once: the copy is submitted with
    /// the work recorded so far, and the values (as bytes of f32) arrive when the device gets
    /// there, to be checked for without waiting ([`PendingRead::is_ready`]), waited for or
    /// awaited.
    pub fn read_later(&self, buf: &GpuBuffer) -> PendingRead {
        assert!(buf.len > 0, "read_later of an empty buffer");
        self.begin_read(buf.raw(), (buf.len * 4) as u64)
    }

    /// The first `bytes` of a COPY_SRC buffer, after everything recorded so far has run.
    pub(super) fn read_raw(&self, buffer: &wgpu::Buffer, bytes: u64) -> Vec<u8> {
        self.begin_read(buffer, bytes).wait()
    }

    /// Records a copy of the first `bytes` of `buffer` into a staging buffer, submits it with
    /// everything recorded before, and asks for the staging buffer to be mapped.
    pub(super) fn begin_read(&self, buffer: &wgpu::Buffer, bytes: u64) -> PendingRead {
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
        let signal = Arc::new(MapSignal::default());
        let on_mapped = signal.clone();
        staging.map_async(wgpu::MapMode::Read, .., move |result| {
            let mut s = on_mapped.state.lock().unwrap();
            s.result = Some(result);
            if let Some(waker) = s.waker.take() {
                waker.wake();
            }
            on_mapped.mapped.notify_all();
        });
        PendingRead { gpu: self.clone(), staging, signal }
    }
}

fn floats(bytes: Vec<u8>) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(&bytes)
}

#[derive(Default)]
struct MapState {
    result: Option<Result<(), wgpu::BufferAsyncError>>,
    waker: Option<Waker>,
}

/// A map's outcome, told to an awaiting task (its waker) and to blocked threads (the condvar).
#[derive(Default)]
struct MapSignal {
    state: Mutex<MapState>,
    mapped: Condvar,
}

/// A buffer's contents on their way to the host: [`wait`](PendingRead::wait) for them, or
/// await the read (a `Future` of the bytes), or ask [`is_ready`](PendingRead::is_ready) without
/// waiting.
pub struct PendingRead {
    gpu: Gpu,
    staging: wgpu::Buffer,
    signal: Arc<MapSignal>,
}

impl PendingRead {
    /// Whether the bytes have arrived; never waits (on native it lets the device report
    /// finished work first).
    pub fn is_ready(&self) -> bool {
        let _ = self.gpu.0.device.poll(wgpu::PollType::Poll);
        self.mapped()
    }

    fn mapped(&self) -> bool {
        self.signal.state.lock().unwrap().result.is_some()
    }

    /// Waits until the map's callback has run. Threads sharing a device share its callbacks:
    /// another thread's poll may be the one that runs ours, a moment after our own poll has
    /// returned, so the wait ends on the callback itself.
    #[cfg(not(target_arch = "wasm32"))]
    fn block_until_mapped(&self) {
        let mut state = self.signal.state.lock().unwrap();
        while state.result.is_none() {
            drop(state);
            self.gpu.wait_idle();
            state = self.signal.state.lock().unwrap();
            if state.result.is_none() {
                state = self.signal.mapped.wait_timeout(state, std::time::Duration::from_millis(1)).unwrap().0;
            }
        }
    }

    /// The bytes, waiting for the device as long as it takes (native only: in a browser the
    /// map completes only when control returns to the page, so await the read instead).
    pub fn wait(self) -> Vec<u8> {
        #[cfg(not(target_arch = "wasm32"))]
        self.block_until_mapped();
        if !self.mapped() {
            panic!(
                "a blocking read in a browser (to_vec, item, a train_step): the page's WebGPU answers only \
                 once control returns to it; await to_vec_async, item_async or train_step_async instead"
            );
        }
        self.take()
    }

    /// The mapped bytes; the map has completed.
    fn take(&self) -> Vec<u8> {
        let refused = self.gpu.0.refused.lock().unwrap().clone();
        if let Some(e) = refused {
            panic!("the device refused work recorded before this read: {e}");
        }
        let result = self.signal.state.lock().unwrap().result.take();
        match result {
            Some(Ok(())) => {}
            Some(Err(e)) => panic!("mapping a readback buffer failed: {e}"),
            None => panic!("a readback buffer was taken before its map completed"),
        }
        let data = self.staging.slice(..).get_mapped_range().expect("readback buffer not mapped").to_vec();
        self.staging.unmap();
        data
    }
}

impl Future for PendingRead {
    type Output = Vec<u8>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<u8>> {
        // Natively nothing but a poll of the device completes the map: wait for it here, as the
        // blocking read does. In a browser the page's event loop completes it and wakes us.
        #[cfg(not(target_arch = "wasm32"))]
        self.block_until_mapped();
        let mut state = self.signal.state.lock().unwrap();
        if state.result.is_none() {
            state.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        drop(state);
        Poll::Ready(self.take())
    }
}
