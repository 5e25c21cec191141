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

mod sampler;
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

/// A GAN training in the page. Each method returns a promise; one step at a time.
#[wasm_bindgen]
pub struct WebGan {
    session: Rc<RefCell<Session>>,
    // Read once at opening, so that asking never meets a step holding the session.
    adapter: String,
    software: bool,
}

#[wasm_bindgen]
impl WebGan {
    /// Opens a GAN from a TOML config and the bytes of an IDX image file.
    pub async fn open(config_toml: String, idx_images: Vec<u8>) -> Result<WebGan, JsError> {
        let session = Session::open(&config_toml, &idx_images).await.map_err(|e| JsError::new(&e))?;
        let (adapter, software) = (shadergan::gpu::describe(session.gpu.info()), session.gpu.is_software());
        Ok(WebGan { session: Rc::new(RefCell::new(session)), adapter, software })
    }

    /// The adapter the page's WebGPU gave, as `shadergan info` prints it.
    pub fn adapter(&self) -> String {
        self.adapter.clone()
    }

    /// Whether the adapter is the browser's software fallback rather than a GPU.
    pub fn is_software(&self) -> bool {
        self.software
    }

    /// The fixed noise's samples as PNG bytes (a grid, eight to a row, each pixel 3x3).
    #[allow(clippy::await_holding_refcell_ref)] // as in `step`: no step may start meanwhile
    pub fn samples_png(&self) -> Promise {
        let session = self.session.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let s = session.try_borrow().map_err(|_| JsError::new("a step is still running: await it first"))?;
            let png = s.samples_png(3).await;
            Ok(Uint8Array::from(&png[..]).into())
        })
    }

    /// The networks trained so far as `model.safetensors` bytes (for a download).
    #[allow(clippy::await_holding_refcell_ref)] // as in `step`: no step may start meanwhile
    pub fn model_file(&self) -> Promise {
        let session = self.session.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let s = session.try_borrow().map_err(|_| JsError::new("a step is still running: await it first"))?;
            let bytes = s.model_file().await.map_err(|e| JsError::new(&e))?;
            Ok(Uint8Array::from(&bytes[..]).into())
        })
    }

    /// One training step; resolves to [D's loss, G's loss, D(x), D(G(z))].
    //
    // The session stays borrowed while the step's figures are awaited: that borrow is what
    // refuses a second step before the first resolves.
    #[allow(clippy::await_holding_refcell_ref)]
    pub fn step(&self) -> Promise {
        let session = self.session.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut s = session
                .try_borrow_mut()
                .map_err(|_| JsError::new("a step is still running: await it before the next"))?;
            let stats = s.step().await.map_err(|e| JsError::new(&e))?;
            Ok(JsValue::from(vec![stats.d_loss, stats.g_loss, stats.d_real, stats.d_fake]))
        })
    }
}
