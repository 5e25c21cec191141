//! The DCGAN family on the training engine: its networks by name, the state that makes a resumed
//! run continue bit for bit (optimizer moments, noise and data positions, fixed noise, historical
//! averages), its report charts, and loading a generator back from a checkpoint.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::engine::{Chart, Metrics, Trainable};
use super::noise::Noise;
use super::{GanTrainer, StepStats, TrainState};
use crate::checkpoint::CheckpointError;
use crate::config::{Config, GanLoss};
use crate::data::ImageSource;
use crate::gpu::Gpu;
use crate::models::dcgan;
use crate::nn::{Module, Sequential};

impl StepStats {
    /// The measurements by name, as metrics.csv records them.
    pub fn metrics(&self) -> Metrics {
        vec![("d_loss", self.d_loss), ("g_loss", self.g_loss), ("d_real", self.d_real), ("d_fake", self.d_fake)]
    }
}

impl Trainable for GanTrainer {
    type Data = dyn ImageSource;

    fn kind(&self) -> &str {
        "dcgan"
    }

    fn steps_done(&self) -> u64 {
        self.step
    }

    fn train_step(&mut self, data: &dyn ImageSource) -> anyhow::Result<Metrics> {
        Ok(self.try_train_step(data)?.metrics())
    }

    fn networks(&self) -> Vec<(&'static str, &dyn Module)> {
        let mut nets: Vec<(&'static str, &dyn Module)> = vec![("generator", &self.g), ("discriminator", &self.d)];
        if let Some(ema) = &self.ema {
            nets.push(("generator_ema", &ema.net));
        }
        nets
    }

    fn save_state(&self, state: &mut TrainState) {
        state.put_optimizer("opt_g", self.opt_g.as_ref());
        state.put_optimizer("opt_d", self.opt_d.as_ref());
        state.put_values("fixed_noise", self.fixed_noise.clone());
        state.put_tensors("history", &self.history);
        state.put_rng("noise", self.noise.generator());
        state.put_sampler("sampler", &self.sampler);
        state.put("d_updates", self.d_updates);
        if let Some(ada) = &self.ada {
            state.put("ada.p", ada.p);
            state.put("ada.sign_sum", ada.sign_sum);
            state.put("ada.count", ada.count);
        }
        if let Some((epoch, cursor)) = self.labelled_position() {
            state.put("labelled.epoch", epoch);
            state.put("labelled.cursor", cursor);
        }
    }

    fn load_state(&mut self, state: &TrainState) -> Result<(), CheckpointError> {
        self.step = state.step;
        state.load_optimizer("opt_g", self.opt_g.as_mut(), &self.g.parameters())?;
        state.load_optimizer("opt_d", self.opt_d.as_mut(), &self.d.parameters())?;
        self.fixed_noise = state.values("fixed_noise", Some(self.fixed_noise.len()))?.to_vec();
        state.load_tensors("history", &self.history)?;
        self.noise = Noise::from_generator(self.config.train.noise, state.rng("noise")?);
        self.sampler = state.sampler("sampler", self.sampler.len())?;
        self.d_updates = state.get("d_updates")?;
        if let Some(ada) = &mut self.ada {
            (ada.p, ada.sign_sum, ada.count) =
                (state.get("ada.p")?, state.get("ada.sign_sum")?, state.get("ada.count")?);
        }
        if state.has("labelled.epoch") {
            self.pending_labelled_position = Some((state.get("labelled.epoch")?, state.get("labelled.cursor")?));
        }
        Ok(())
    }

    fn sample_grid(&self, _data: &dyn ImageSource) -> image::RgbImage {
        let d = &self.config.data;
        crate::viz::grid(&self.generate_fixed(), d.channels, d.image_size, 8)
    }

    fn config_toml(&self) -> String {
        self.config.to_toml()
    }

    fn charts(&self, _metrics: &[&'static str]) -> Vec<Chart> {
        // A critic's mean scores are unbounded (Wasserstein losses); D's outputs are probabilities.
        let critic = matches!(
            self.config.train.loss,
            GanLoss::Wasserstein | GanLoss::WassersteinGp | GanLoss::Hinge | GanLoss::Relativistic
        );
        vec![
            Chart { title: "Losses", metrics: vec!["d_loss", "g_loss"], range: None },
            if critic {
                Chart { title: "Critic scores", metrics: vec!["d_real", "d_fake"], range: None }
            } else {
                Chart { title: "Discriminator outputs", metrics: vec!["d_real", "d_fake"], range: Some((0.0, 1.0)) }
            },
        ]
    }
}

/// A generator rebuilt from a model checkpoint (its config is in the metadata). The network the
/// embedded config describes is checked against the weights the file holds before it is built,
/// so a small file cannot make the loader allocate a huge network.
pub fn load_generator(gpu: &Gpu, path: &Path) -> Result<(Config, Sequential), CheckpointError> {
    generator_from_bytes(gpu, &crate::checkpoint::read_file(path)?, path)
}

/// [`load_generator`] from a model.safetensors file's bytes (a browser's opened file); `path`
/// names them in errors. Refuses a generator this device cannot hold before building it.
pub fn generator_from_bytes(gpu: &Gpu, bytes: &[u8], path: &Path) -> Result<(Config, Sequential), CheckpointError> {
    let (tensors, meta) = crate::checkpoint::parse(bytes, path)?;
    let invalid = |problem: String| CheckpointError::Invalid { path: path.to_path_buf(), problem };
    match meta.get("model").map(String::as_str) {
        Some("dcgan") => {}
        Some(other) => {
            return Err(invalid(format!("holds a '{other}' model; this command needs a GAN (dcgan) checkpoint")))
        }
        None => return Err(invalid("no model kind in the metadata; not a shadergan checkpoint".into())),
    }
    let text: String = crate::checkpoint::meta(&meta, "config", path)?;
    let config = Config::parse(&text, path).map_err(|e| invalid(format!("embedded config: {e}")))?;
    let m = &config.model;
    let (size, ch) = (config.data.image_size, config.data.channels);
    let inputs = m.latent_dim + super::codes::g_extra(&config);
    check_holds(&tensors, "generator", dcgan::generator_weight_count(inputs, m.g_width, ch, size), path)?;
    let per_image = dcgan::generator_largest_activation(inputs, m.g_width, ch, size);
    check_fits_device(gpu, &tensors, per_image * super::codes::GENERATE_CHUNK as u128, path)?;
    let g = super::build_generator(gpu, &config, &mut ChaCha8Rng::seed_from_u64(0));
    // The moving average of G's weights when the run kept one: what its samples showed.
    let name = if tensors.keys().any(|k| k.starts_with("generator_ema.")) { "generator_ema" } else { "generator" };
    crate::checkpoint::import(&g, name, &tensors, path)?;
    Ok((config, g))
}

/// Refuses a checkpoint whose tensors, or whose network's largest activation for one run
/// (`per_batch` values), are past the largest buffer `gpu` can bind: a browser's adapter may
/// allow far less than the machine that trained it.
pub fn check_fits_device(
    gpu: &Gpu,
    tensors: &std::collections::HashMap<String, crate::checkpoint::HostTensor>,
    per_batch: u128,
    path: &Path,
) -> Result<(), CheckpointError> {
    let limit = gpu.limits().max_storage_buffer_binding_size as u128;
    let too_big = |what: String, values: u128| CheckpointError::Invalid {
        path: path.to_path_buf(),
        problem: format!(
            "{what} needs {} MiB in one buffer, more than this adapter's {} MiB storage binding limit; \
             use a device that allows more, or a smaller model",
            (values * 4) >> 20,
            limit >> 20
        ),
    };
    if let Some((name, t)) = tensors.iter().max_by_key(|(_, t)| t.data.len()) {
        if t.data.len() as u128 * 4 > limit {
            return Err(too_big(format!("tensor '{name}'"), t.data.len() as u128));
        }
    }
    if per_batch * 4 > limit {
        let chunk = super::codes::GENERATE_CHUNK;
        return Err(too_big(format!("the generator's largest layer for a batch of {chunk} images"), per_batch));
    }
    Ok(())
}

/// Refuses a file whose `prefix.` tensors hold fewer values than the `needed` weights its own
/// config declares (a damaged or hostile file), before anything is allocated for them.
pub fn check_holds(
    tensors: &std::collections::HashMap<String, crate::checkpoint::HostTensor>,
    prefix: &str,
    needed: u128,
    path: &Path,
) -> Result<(), CheckpointError> {
    let held: u128 =
        tensors.iter().filter(|(k, _)| k.starts_with(&format!("{prefix}."))).map(|(_, t)| t.data.len() as u128).sum();
    if needed > held {
        return Err(CheckpointError::Invalid {
            path: path.to_path_buf(),
            problem: format!(
                "its config declares a {prefix} of {needed} weights but the file holds {held} values for it: \
                 the config or the tensors were changed"
            ),
        });
    }
    Ok(())
}
