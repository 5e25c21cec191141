//! DCGAN (Radford et al. 2015): strided convs in D, transposed convs in G, batch norm in both
//! except G's output and D's input, ReLU in G, leaky ReLU 0.2 in D, tanh output, N(0, 0.02)
//! weights. One up/down-sampling stage per factor of two between 4x4 and the image size.

use rand::Rng;

use crate::config::Norm;
use crate::gpu::Gpu;
use crate::nn::{
    normal_values, BatchNorm, Conv2d, ConvTranspose2d, Init, Layer, LayerNorm, Linear, MinibatchDiscrimination,
    Sequential, VirtualBatchNorm,
};

const INIT: Init = Init::Normal(0.02);

fn stages(image_size: usize) -> usize {
    assert!(image_size >= 8 && image_size.is_power_of_two(), "DCGAN image size must be a power of two >= 8");
    (image_size / 4).trailing_zeros() as usize
}

/// DCGAN's batch-norm initialisation: weight N(1, 0.02), bias 0.
fn batch_norm(gpu: &Gpu, channels: usize, rng: &mut impl Rng) -> Layer {
    let bn = BatchNorm::new(gpu, channels);
    bn.weight.assign(&normal_values(channels, 1.0, 0.02, rng));
    Layer::BatchNorm(bn)
}

/// Rows of the reference batch that virtual batch norm puts in front of every batch.
pub const VBN_REFERENCE: usize = 32;

/// z [batch, latent, 1, 1] -> image [batch, channels, size, size] in [-1, 1]. With
/// `Norm::VirtualBatch` the input must start with `VBN_REFERENCE` reference rows.
pub fn generator(
    gpu: &Gpu,
    latent: usize,
    width: usize,
    channels: usize,
    image_size: usize,
    norm: Norm,
    rng: &mut impl Rng,
) -> Sequential {
    // Layer norm or none keep each sample's computation to itself (data-parallel training
    // then matches a single process exactly); batch norm couples the batch.
    let norm_layer = |c: usize, side: usize, rng: &mut _| match norm {
        Norm::VirtualBatch => Some(Layer::VirtualBatchNorm(VirtualBatchNorm::new(gpu, c, VBN_REFERENCE))),
        Norm::Batch => Some(batch_norm(gpu, c, rng)),
        Norm::Layer => Some(Layer::LayerNorm(LayerNorm::new(gpu, &[c, side, side]))),
        Norm::None => None,
    };
    let n = stages(image_size);
    let mut c = width << (n - 1);
    let mut side = 4;
    let bias = norm == Norm::None;
    let mut layers =
        vec![Layer::ConvTranspose2d(ConvTranspose2d::new(gpu, latent, c, 4).bias(bias).init_with(INIT, rng))];
    layers.extend(norm_layer(c, side, rng));
    layers.push(Layer::Relu);
    for _ in 1..n {
        layers.push(Layer::ConvTranspose2d(
            ConvTranspose2d::new(gpu, c, c / 2, 4).stride(2).padding(1).bias(bias).init_with(INIT, rng),
        ));
        c /= 2;
        side *= 2;
        layers.extend(norm_layer(c, side, rng));
        layers.push(Layer::Relu);
    }
    layers.push(Layer::ConvTranspose2d(
        ConvTranspose2d::new(gpu, c, channels, 4).stride(2).padding(1).bias(false).init_with(INIT, rng),
    ));
    layers.push(Layer::Tanh);
    Sequential::new(layers)
}

/// How many convolution weights [`generator`] allocates, counted without building it: a loader
/// compares this with what a checkpoint file holds before allocating anything.
pub fn generator_weight_count(latent: usize, width: usize, channels: usize, image_size: usize) -> u128 {
    let n = stages(image_size);
    let mut c = (width as u128) << (n - 1);
    let mut total = latent as u128 * c * 16;
    for _ in 1..n {
        total += c * (c / 2) * 16;
        c /= 2;
    }
    total + c * channels as u128 * 16
}

/// The most values one image occupies in any layer of [`generator`] (its largest activation),
/// counted without building it: how a loader knows whether a device can hold a batch.
pub fn generator_largest_activation(latent: usize, width: usize, channels: usize, image_size: usize) -> u128 {
    let n = stages(image_size);
    let (mut c, mut side) = ((width as u128) << (n - 1), 4u128);
    let mut largest = (latent as u128).max(c * side * side);
    for _ in 1..n {
        c /= 2;
        side *= 2;
        largest = largest.max(c * side * side);
    }
    largest.max(channels as u128 * (image_size as u128).pow(2))
}

/// image [batch, channels, size, size] -> scores [batch, outputs] (logits: no sigmoid, losses
/// take logits). `norm` is applied in the hidden layers (not on the input, per DCGAN).
pub fn discriminator(
    gpu: &Gpu,
    width: usize,
    channels: usize,
    image_size: usize,
    norm: Norm,
    outputs: usize,
    rng: &mut impl Rng,
) -> Sequential {
    let n = stages(image_size);
    let mut c = width;
    let mut side = image_size / 2;
    let mut layers = vec![
        Layer::Conv2d(Conv2d::new(gpu, channels, c, 4).stride(2).padding(1).bias(false).init_with(INIT, rng)),
        Layer::LeakyRelu(0.2),
    ];
    for _ in 1..n {
        // Without batch norm the conv needs its own bias.
        layers.push(Layer::Conv2d(
            Conv2d::new(gpu, c, c * 2, 4).stride(2).padding(1).bias(norm != Norm::Batch).init_with(INIT, rng),
        ));
        c *= 2;
        side /= 2;
        match norm {
            Norm::Batch => layers.push(batch_norm(gpu, c, rng)),
            Norm::Layer => layers.push(Layer::LayerNorm(LayerNorm::new(gpu, &[c, side, side]))),
            Norm::None | Norm::VirtualBatch => {}
        }
        layers.push(Layer::LeakyRelu(0.2));
    }
    layers.push(Layer::Conv2d(Conv2d::new(gpu, c, outputs, 4).bias(false).init_with(INIT, rng)));
    layers.push(Layer::Flatten);
    Sequential::new(layers)
}

/// The last hidden features of a discriminator built here: the output of its last leaky ReLU.
pub fn feature_layer(d: &Sequential) -> usize {
    d.layers.iter().rposition(|l| matches!(l, Layer::LeakyRelu(_))).expect("a DCGAN discriminator has leaky ReLUs")
}

/// Replaces the discriminator's output conv by flatten -> minibatch discrimination -> linear.
pub fn add_minibatch_discrimination(d: &mut Sequential, gpu: &Gpu, kernels: usize, dims: usize, rng: &mut impl Rng) {
    let Some(Layer::Conv2d(head)) = d.layers.get(d.layers.len() - 2) else { panic!("expected the output conv") };
    let (outputs, c, k) = (head.weight.shape()[0], head.weight.shape()[1], head.weight.shape()[2]);
    let features = c * k * k;
    d.layers.truncate(d.layers.len() - 2);
    d.layers.push(Layer::Flatten);
    d.layers.push(Layer::MinibatchDiscrimination(MinibatchDiscrimination::new(gpu, features, kernels, dims, rng)));
    d.layers.push(Layer::Linear(Linear::new(gpu, features + kernels, outputs).init_with(INIT, rng)));
}
