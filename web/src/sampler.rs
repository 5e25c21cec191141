//! A trained generator opened from the bytes of a `model.safetensors` (one the page downloaded,
//! or one a CLI run wrote): samples and latent walks, read without blocking. The file is checked
//! as `shadergan sample` checks it (a shadergan GAN checkpoint, whole, its weights matching its
//! config) and against what this adapter can hold, before anything is built.

use std::path::Path;

use shadergan::config::Config;
use shadergan::nn::Sequential;
use shadergan::tasks::{interpolation_codes, sample_codes};
use shadergan::train::{codes::generate_async, generator_from_bytes};
use shadergan::{viz, Gpu, GpuOptions};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::js_sys::{Promise, Uint8Array};

/// A generator loaded from a checkpoint's bytes, for Rust callers and, through
/// [`WebSampler`], for the page.
pub struct Sampler {
    /// The device it runs on.
    pub gpu: Gpu,
    /// The config the checkpoint embeds.
    pub config: Config,
    /// The generator (its moving average where the run kept one).
    pub generator: Sequential,
}

impl Sampler {
    /// Loads the generator of `bytes`, a model checkpoint called `name` (in messages), on `gpu`.
    pub fn open_on(gpu: Gpu, bytes: &[u8], name: &str) -> Result<Sampler, String> {
        let (config, generator) = generator_from_bytes(&gpu, bytes, Path::new(name)).map_err(|e| e.to_string())?;
        Ok(Sampler { gpu, config, generator })
    }

    /// `n` samples of the noise seeded with `seed` (one row per class for a conditional model):
    /// the images and the grid's column count, as `shadergan sample --n --seed` draws them.
    pub async fn samples(&self, n: usize, seed: u64) -> Result<(Vec<f32>, usize), String> {
        let (codes, columns) = sample_codes(&self.config, n, seed, None, None).map_err(|e| e.to_string())?;
        Ok((generate_async(&self.gpu, &self.config, &self.generator, &codes).await, columns))
    }

    /// `rows` linear walks between random codes, then `rows` spherical ones, `steps` images
    /// each, as `shadergan interpolate` draws them.
    pub async fn interpolation(&self, rows: usize, steps: usize, seed: u64) -> Result<Vec<f32>, String> {
        let codes = interpolation_codes(&self.config, rows, steps, seed).map_err(|e| e.to_string())?;
        Ok(generate_async(&self.gpu, &self.config, &self.generator, &codes).await)
    }

    fn png(&self, images: &[f32], columns: usize) -> Vec<u8> {
        let d = &self.config.data;
        let scale = (96 / d.image_size as u32).clamp(1, 3);
        viz::grid_png(images, d.channels, d.image_size, columns, scale)
    }
}

/// A checkpoint opened in the page. Each method returns a promise.
#[wasm_bindgen]
pub struct WebSampler {
    sampler: std::rc::Rc<Sampler>,
}

#[wasm_bindgen]
impl WebSampler {
    /// Opens the GAN checkpoint in `bytes` (a file called `name`) on the page's WebGPU; fails
    /// with a message naming the file and what is wrong with it.
    pub async fn open(bytes: Vec<u8>, name: String) -> Result<WebSampler, JsError> {
        let gpu = Gpu::new_async(&GpuOptions::default()).await.map_err(|e| JsError::new(&e.to_string()))?;
        let sampler = Sampler::open_on(gpu, &bytes, &name).map_err(|e| JsError::new(&e))?;
        Ok(WebSampler { sampler: std::rc::Rc::new(sampler) })
    }

    /// What the file holds, in a line: image size, channels, latent size, width.
    pub fn describe(&self) -> String {
        let c = &self.sampler.config;
        format!(
            "a DCGAN generator (model kind {kind}) of {s}x{s} images with {ch} channel(s), latent size {z}, width {g}",
            kind = format!("{:?}", c.model.kind).to_lowercase(),
            s = c.data.image_size,
            ch = c.data.channels,
            z = c.model.latent_dim,
            g = c.model.g_width
        )
    }

    /// 64 samples of the noise seeded with `seed`, as a PNG grid.
    pub fn samples_png(&self, seed: u32) -> Promise {
        let sampler = self.sampler.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let (images, columns) = sampler.samples(64, seed as u64).await.map_err(|e| JsError::new(&e))?;
            Ok(Uint8Array::from(&sampler.png(&images, columns)[..]).into())
        })
    }

    /// Two linear and two spherical walks of ten steps between codes seeded with `seed`, one
    /// to a row, as a PNG grid.
    pub fn interpolation_png(&self, seed: u32) -> Promise {
        let sampler = self.sampler.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let steps = 10;
            let images = sampler.interpolation(2, steps, seed as u64).await.map_err(|e| JsError::new(&e))?;
            Ok(Uint8Array::from(&sampler.png(&images, steps)[..]).into())
        })
    }
}
