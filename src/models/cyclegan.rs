//! CycleGAN's networks (Zhu et al. 2017): a ResNet generator (7x7 conv, two stride-2 convs,
//! residual blocks, two transposed convs, 7x7 conv, tanh; instance norm, reflection padding)
//! and a PatchGAN discriminator that scores overlapping patches.

use rand::Rng;

use crate::gpu::Gpu;
use crate::nn::{Conv2d, ConvTranspose2d, Init, InstanceNorm, Layer, Sequential};

const INIT: Init = Init::Normal(0.02);

fn conv(gpu: &Gpu, c_in: usize, c_out: usize, k: usize, stride: usize, pad: usize, rng: &mut impl Rng) -> Layer {
    Layer::Conv2d(Conv2d::new(gpu, c_in, c_out, k).stride(stride).padding(pad).init_with(INIT, rng))
}

/// image [n, channels, s, s] -> image [n, channels, s, s] in [-1, 1]; s must be a multiple of 4.
pub fn generator(gpu: &Gpu, channels: usize, width: usize, blocks: usize, rng: &mut impl Rng) -> Sequential {
    let w = width;
    let mut layers = vec![
        Layer::ReflectionPad(3),
        conv(gpu, channels, w, 7, 1, 0, rng),
        Layer::InstanceNorm(InstanceNorm::new(gpu, w, false)),
        Layer::Relu,
    ];
    for m in [1, 2] {
        layers.push(conv(gpu, w * m, w * m * 2, 3, 2, 1, rng));
        layers.push(Layer::InstanceNorm(InstanceNorm::new(gpu, w * m * 2, false)));
        layers.push(Layer::Relu);
    }
    let c = w * 4;
    for _ in 0..blocks {
        layers.push(Layer::Residual(Sequential::new(vec![
            Layer::ReflectionPad(1),
            conv(gpu, c, c, 3, 1, 0, rng),
            Layer::InstanceNorm(InstanceNorm::new(gpu, c, false)),
            Layer::Relu,
            Layer::ReflectionPad(1),
            conv(gpu, c, c, 3, 1, 0, rng),
            Layer::InstanceNorm(InstanceNorm::new(gpu, c, false)),
        ])));
    }
    for m in [4, 2] {
        layers.push(Layer::ConvTranspose2d(
            ConvTranspose2d::new(gpu, w * m, w * m / 2, 3).stride(2).padding(1).output_padding(1).init_with(INIT, rng),
        ));
        layers.push(Layer::InstanceNorm(InstanceNorm::new(gpu, w * m / 2, false)));
        layers.push(Layer::Relu);
    }
    layers.push(Layer::ReflectionPad(3));
    layers.push(conv(gpu, w, channels, 7, 1, 0, rng));
    layers.push(Layer::Tanh);
    Sequential::new(layers)
}

/// How many convolution weights [`generator`] allocates, counted without building it.
pub fn generator_weight_count(channels: usize, width: usize, blocks: usize) -> u128 {
    let (c, w, b) = (channels as u128, width as u128, blocks as u128);
    2 * c * w * 49 + 2 * (w * 2 * w * 9 + 2 * w * 4 * w * 9) + b * 2 * (4 * w) * (4 * w) * 9
}

/// PatchGAN: `layers` stride-2 4x4 convs (the first without norm), a stride-1 conv, and a
/// one-channel stride-1 output conv: [n, channels, s, s] -> patch scores [n, 1, p, p]. With 3
/// layers each score sees a 70x70 patch, as in the paper; fewer layers see smaller patches.
pub fn patch_discriminator(gpu: &Gpu, channels: usize, width: usize, layers: usize, rng: &mut impl Rng) -> Sequential {
    let mut net = vec![conv(gpu, channels, width, 4, 2, 1, rng), Layer::LeakyRelu(0.2)];
    let mut c = width;
    for i in 1..=layers {
        let next = width * (1 << i.min(3));
        let stride = if i < layers { 2 } else { 1 };
        net.push(conv(gpu, c, next, 4, stride, 1, rng));
        net.push(Layer::InstanceNorm(InstanceNorm::new(gpu, next, false)));
        net.push(Layer::LeakyRelu(0.2));
        c = next;
    }
    net.push(conv(gpu, c, 1, 4, 1, 1, rng));
    Sequential::new(net)
}

/// The side of the input patch each PatchGAN score depends on.
pub fn receptive_field(layers: usize) -> usize {
    // Walk back from one output pixel: kernel 4 each, strides 2 for the first `layers` convs.
    let mut field = 1;
    let strides: Vec<usize> =
        std::iter::once(2).chain((1..=layers).map(|i| if i < layers { 2 } else { 1 })).chain([1]).collect();
    for s in strides.iter().rev() {
        field = (field - 1) * s + 4;
    }
    field
}

#[cfg(test)]
mod tests {
    #[test]
    fn patchgan_receptive_field_is_70_with_three_layers() {
        assert_eq!(super::receptive_field(3), 70);
        assert_eq!(super::receptive_field(1), 16);
        assert_eq!(super::receptive_field(2), 34);
    }
}
