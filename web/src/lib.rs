//! shadergan in a browser: the same engine, kernels and WGSL on the page's WebGPU. Nothing here
//! blocks: the device opens and every step's figures come back through futures, which the page
//! awaits as promises. Data arrive as bytes (the page fetches them), never from a file system.
//!
//! The page's side is [`WebGan`]: open a GAN from a config and the bytes of an IDX image file,
//! then await one training step at a time, and download what it learned as `model.safetensors`;
//! and [`WebSampler`]: open such a file (the page's or a CLI run's) to sample and interpolate.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use shadergan::config::Config;
use shadergan::data::{idx_images_from_bytes, Dataset};
use shadergan::train::{GanTrainer, StepStats};
use shadergan::viz;
use shadergan::{Gpu, GpuOptions};
use wasm_bindgen::prelude::*;

mod games;
mod sampler;
pub use games::{mode_coverage, WebMixture, WebToy};
pub use sampler::{Sampler, WebSampler};
// js-sys through wasm-bindgen-futures' own dependency, so this crate needs no other.
use wasm_bindgen_futures::js_sys::{Promise, Uint8Array};

/// A GAN and its data on the page's device, for Rust callers (the browser tests) and, through
/// [`WebGan`], for the page.
pub struct Session {
    /// The page's WebGPU device.
    pub gpu: Gpu,
    /// The config's model and optimizers.
    pub trainer: GanTrainer,
    /// The training images.
    pub data: Dataset,
}

impl Session {
    /// Opens the page's WebGPU and builds the model `config_toml` describes (its `[data]`
    /// section's `image_size` and `limit` apply to `idx_images`, the bytes of an IDX image file,
    /// gzip'd or not).
    pub async fn open(config_toml: &str, idx_images: &[u8]) -> Result<Session, String> {
        let config = Config::parse(config_toml, Path::new("config.toml")).map_err(|e| e.to_string())?;
        if config.train.ada_target > 0.0 {
            // ADA tunes its probability from D's outputs in the middle of a step, a read a page
            // cannot wait for.
            return Err(format!(
                "train.ada_target = {}: adaptive augmentation is not available in a browser yet; \
                 set train.ada_target = 0 (a fixed train.diffaugment policy works)",
                config.train.ada_target
            ));
        }
        let d = &config.data;
        let data = idx_images_from_bytes(idx_images, &d.images, d.image_size, d.limit).map_err(|e| e.to_string())?;
        if data.len < config.train.batch_size {
            return Err(format!(
                "{}: {} images, fewer than one batch of {} (train.batch_size)",
                d.images.display(),
                data.len,
                config.train.batch_size
            ));
        }
        let gpu = Gpu::new_async(&GpuOptions::default()).await.map_err(|e| e.to_string())?;
        let trainer = GanTrainer::new(&gpu, &config, data.len);
        Ok(Session { gpu, trainer, data })
    }

    /// One training step: "(1) update D on real and detached fake, (2) update G"; its figures
    /// once the device has produced them.
    pub async fn step(&mut self) -> Result<StepStats, String> {
        self.trainer.train_step_async(&self.data).await.map_err(|e| e.to_string())
    }

    /// The trained networks as the bytes of a `model.safetensors`, the file a CLI run writes
    /// and `shadergan sample --checkpoint` loads.
    pub async fn model_file(&self) -> Result<Vec<u8>, String> {
        shadergan::train::model_file_async(&self.trainer).await.map_err(|e| e.to_string())
    }

    /// The fixed noise's samples as a PNG grid, eight to a row, each pixel shown `scale` times.
    pub async fn samples_png(&self, scale: u32) -> Vec<u8> {
        let images = self.trainer.generate_fixed_async().await;
        let d = &self.trainer.config.data;
        viz::grid_png(&images, d.channels, d.image_size, 8, scale)
    }
}

/// A value that one promise at a time may use: taken out while a call runs and put back when
/// it ends, so a second call before the first resolves is refused rather than interleaved.
pub(crate) struct Exclusive<T>(Rc<RefCell<Option<T>>>);

impl<T: 'static> Exclusive<T> {
    pub(crate) fn new(value: T) -> Self {
        Exclusive(Rc::new(RefCell::new(Some(value))))
    }

    /// A promise of `call` run on the value, which it hands back with its result.
    pub(crate) fn promise<F, Fut>(&self, call: F) -> Promise
    where
        F: FnOnce(T) -> Fut + 'static,
        Fut: std::future::Future<Output = (T, Result<JsValue, String>)> + 'static,
    {
        let slot = self.0.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let value = slot
                .borrow_mut()
                .take()
                .ok_or_else(|| JsError::new("the previous call is still running: await it first"))?;
            let (value, result) = call(value).await;
            *slot.borrow_mut() = Some(value);
            result.map_err(|e| JsError::new(&e).into())
        })
    }
}

/// Which adapter a page's device runs on, read once at opening so that asking never waits
/// for a step.
#[wasm_bindgen]
#[derive(Clone)]
pub struct Adapter {
    name: String,
    software: bool,
}

impl Adapter {
    pub(crate) fn of(gpu: &Gpu) -> Adapter {
        Adapter { name: shadergan::gpu::describe(gpu.info()), software: gpu.is_software() }
    }
}

#[wasm_bindgen]
impl Adapter {
    /// The adapter as `shadergan info` prints it.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Whether it is the browser's software fallback rather than a GPU.
    #[wasm_bindgen(getter)]
    pub fn software(&self) -> bool {
        self.software
    }
}

/// A GAN training in the page. Each method returns a promise; one call at a time.
#[wasm_bindgen]
pub struct WebGan {
    session: Exclusive<Session>,
    adapter: Adapter,
}

#[wasm_bindgen]
impl WebGan {
    /// Opens a GAN from a TOML config and the bytes of an IDX image file.
    pub async fn open(config_toml: String, idx_images: Vec<u8>) -> Result<WebGan, JsError> {
        let session = Session::open(&config_toml, &idx_images).await.map_err(|e| JsError::new(&e))?;
        let adapter = Adapter::of(&session.gpu);
        Ok(WebGan { session: Exclusive::new(session), adapter })
    }

    /// The adapter the page's WebGPU gave.
    pub fn adapter(&self) -> Adapter {
        self.adapter.clone()
    }

    /// The fixed noise's samples as PNG bytes (a grid, eight to a row, each pixel 3x3).
    pub fn samples_png(&self) -> Promise {
        self.session.promise(|s| async move {
            let png = s.samples_png(3).await;
            (s, Ok(Uint8Array::from(&png[..]).into()))
        })
    }

    /// The networks trained so far as `model.safetensors` bytes (for a download).
    pub fn model_file(&self) -> Promise {
        self.session.promise(|s| async move {
            let bytes = s.model_file().await.map(|b| Uint8Array::from(&b[..]).into());
            (s, bytes)
        })
    }

    /// One training step; resolves to [D's loss, G's loss, D(x), D(G(z))].
    pub fn step(&self) -> Promise {
        self.session.promise(|mut s| async move {
            let stats = s.step().await.map(|t| JsValue::from(vec![t.d_loss, t.g_loss, t.d_real, t.d_fake]));
            (s, stats)
        })
    }
}
