//! An exponential moving average of G's weights (StyleGAN2's G_ema): a second generator whose
//! parameters trail G's with a half-life counted in training images, and whose buffers (batch
//! norm's running statistics) are G's. Samples, grids and `sample` use it when it is on.

use crate::nn::{Role, Sequential};
use crate::tensor::no_grad;

/// The averaged generator and its decay per update.
pub struct Ema {
    /// The averaged generator.
    pub net: Sequential,
    /// The weight of the old average at each update: 0.5^(batch / half-life in images).
    pub beta: f32,
}

impl Ema {
    /// An average of `g` starting at its weights: `fresh` is a generator of the same
    /// architecture (its values are overwritten), `half_life` counted in images of `batch`.
    pub fn new(g: &Sequential, fresh: Sequential, half_life_images: f64, batch: usize) -> Ema {
        let ema = Ema { net: fresh, beta: 0.5f64.powf(batch as f64 / half_life_images) as f32 };
        let _no_graph = no_grad();
        for ((_, mine, _), (_, theirs, _)) in ema.net.named_tensors().iter().zip(g.named_tensors()) {
            mine.assign_from(&theirs);
        }
        ema
    }

    /// θ_ema ← θ + β (θ_ema - θ) for every parameter of `g`; buffers copied.
    pub fn update(&self, g: &Sequential) {
        let _no_graph = no_grad();
        for ((_, mine, role), (_, theirs, _)) in self.net.named_tensors().iter().zip(g.named_tensors()) {
            let next = match role {
                Role::Parameter => theirs.add(&mine.sub(&theirs).scale(self.beta)),
                Role::Buffer => theirs,
            };
            mine.assign_from(&next);
        }
    }
}
