//! The lectures' two small games in the page: the 1-D game (x = z + θ against a logistic D)
//! and the ring of eight 2-D Gaussians with its live mode count, each stepped as a promise.

use shadergan::mixture::MixtureGan;
use shadergan::toy::ToyGame;
use shadergan::{Gpu, GpuOptions};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::js_sys::{Float32Array, Promise};

use crate::{Adapter, Exclusive};

async fn open_gpu() -> Result<Gpu, JsError> {
    Gpu::new_async(&GpuOptions::default()).await.map_err(|e| JsError::new(&e.to_string()))
}

/// The 1-D game: data N(0, 1), G's samples N(θ, 1), D(x) = sigmoid(w x + b).
#[wasm_bindgen]
pub struct WebToy {
    game: Exclusive<ToyGame>,
    adapter: Adapter,
}

#[wasm_bindgen]
impl WebToy {
    /// θ at 3 and D between the two, seeded with `seed`.
    pub async fn open(seed: u32) -> Result<WebToy, JsError> {
        let gpu = open_gpu().await?;
        Ok(WebToy { game: Exclusive::new(ToyGame::new(&gpu, seed as u64)), adapter: Adapter::of(&gpu) })
    }

    /// The adapter the page's WebGPU gave.
    pub fn adapter(&self) -> Adapter {
        self.adapter.clone()
    }

    /// One iteration; resolves to [θ, w, b] after it.
    pub fn step(&self) -> Promise {
        self.game.promise(|mut game| async move {
            let s = game.step_async().await;
            (game, Ok(Float32Array::from(&[s.theta, s.w, s.b][..]).into()))
        })
    }
}

/// The most points one call draws.
const MAX_POINTS: u32 = 100_000;

/// The ring of eight Gaussians learnt by two small MLPs.
#[wasm_bindgen]
pub struct WebMixture {
    gan: Exclusive<MixtureGan>,
    adapter: Adapter,
}

#[wasm_bindgen]
impl WebMixture {
    /// Fresh networks seeded with `seed`.
    pub async fn open(seed: u32) -> Result<WebMixture, JsError> {
        let gpu = open_gpu().await?;
        Ok(WebMixture { gan: Exclusive::new(MixtureGan::new(&gpu, seed as u64)), adapter: Adapter::of(&gpu) })
    }

    /// The adapter the page's WebGPU gave.
    pub fn adapter(&self) -> Adapter {
        self.adapter.clone()
    }

    /// One training step; resolves to [D's loss, G's loss, D(x), D(G(z))].
    pub fn step(&self) -> Promise {
        self.gan.promise(|mut gan| async move {
            let s = gan.step_async().await;
            (gan, Ok(Float32Array::from(&[s.d_loss, s.g_loss, s.d_real, s.d_fake][..]).into()))
        })
    }

    /// `n` generated points; resolves to [x0, y0, x1, y1, ...].
    pub fn samples(&self, n: u32) -> Promise {
        self.gan.promise(move |mut gan| async move {
            if !(1..=MAX_POINTS).contains(&n) {
                return (gan, Err(format!("samples: n must be between 1 and {MAX_POINTS}, got {n}")));
            }
            let points = gan.samples(n as usize).to_vec_async().await;
            (gan, Ok(Float32Array::from(&points[..]).into()))
        })
    }

    /// The ring's mode centres: [x0, y0, x1, y1, ...].
    pub fn modes() -> Vec<f32> {
        (0..shadergan::mixture::MODES).flat_map(shadergan::mixture::mode_centre).collect()
    }
}

/// How many modes `points` cover and the share of points near one: [covered, share] (a mode is
/// covered by 1% of the points within three of its standard deviations).
#[wasm_bindgen]
pub fn mode_coverage(points: &[f32]) -> Vec<f32> {
    let (covered, share) = shadergan::mixture::mode_coverage(points);
    vec![covered as f32, share]
}
