//! Load a trained generator and write images from an application.
//!
//!     cargo run --release --example generate -- runs/dcgan-mnist/model.safetensors out/ [n]

use shadergan::prelude::*;
use shadergan::train::{generate, load_generator, noise::Noise, Codes};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, checkpoint, out, ..] = &args[..] else {
        return Err("usage: generate MODEL.safetensors OUT_DIR [n]".into());
    };
    let n: usize = args.get(3).map_or(Ok(16), |s| s.parse())?;
    let gpu = Gpu::default_device()?;
    let (config, g) = load_generator(&gpu, checkpoint.as_ref())?;
    let z = Noise::new(config.train.noise, 1).sample(n * config.model.latent_dim);
    let images = generate(&gpu, &config, &g, &Codes { z, ..Codes::default() });
    std::fs::create_dir_all(out)?;
    let per = config.data.channels * config.data.image_size * config.data.image_size;
    for (i, image) in images.chunks(per).enumerate() {
        let picture = shadergan::viz::to_image(image, config.data.channels, config.data.image_size);
        shadergan::viz::save_png(&std::path::Path::new(out).join(format!("{i:03}.png")), &picture, 1)?;
    }
    println!("{n} images in {out}");
    Ok(())
}
