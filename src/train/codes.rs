//! What G is fed and what D is asked, per GAN kind: class one-hots (conditional GAN, ACGAN),
//! InfoGAN's categorical and continuous codes, class planes beside D's input, and how D's
//! output columns split into the real/fake score and the auxiliary head.

use crate::config::{Config, GanKind, Norm};
use crate::gpu::Gpu;
use crate::nn::{loss, one_hot, Conv2d, Mode, Sequential};
use crate::tensor::{no_grad, Tensor};
use crate::train::noise::Noise;

/// Channels G takes beside z.
pub fn g_extra(config: &Config) -> usize {
    let m = &config.model;
    match m.kind {
        GanKind::Acgan => m.classes,
        GanKind::Infogan => m.info_categorical + m.info_continuous,
        GanKind::Gan if m.conditional => m.classes,
        _ => 0,
    }
}

/// Columns of D's output: the real/fake score first, then the auxiliary head.
pub fn d_outputs(config: &Config) -> usize {
    let m = &config.model;
    match m.kind {
        GanKind::Gan => 1,
        GanKind::Acgan => 1 + m.classes,
        GanKind::Infogan => 1 + m.info_categorical + m.info_continuous,
        GanKind::SemiSupervised => m.classes,
    }
}

/// The codes behind one batch of G's samples.
#[derive(Clone, Debug, Default)]
pub struct Codes {
    /// Noise vectors, `[n, latent]` row-major.
    pub z: Vec<f32>,
    /// Class (conditional GAN, ACGAN) or categorical code (InfoGAN) per sample.
    pub labels: Vec<u32>,
    /// InfoGAN's continuous codes, [n, info_continuous].
    pub continuous: Vec<f32>,
}

/// G's input [n, latent + extra, 1, 1].
pub fn g_input(gpu: &Gpu, config: &Config, codes: &Codes) -> Tensor {
    let latent = config.model.latent_dim;
    let n = codes.z.len() / latent;
    let extra = g_extra(config);
    if extra == 0 {
        return Tensor::from_vec(gpu, &[n, latent, 1, 1], &codes.z);
    }
    let m = &config.model;
    let (k, cont) = match m.kind {
        GanKind::Infogan => (m.info_categorical, m.info_continuous),
        _ => (m.classes, 0),
    };
    assert_eq!(codes.labels.len(), n, "one class or code per sample");
    let mut data = Vec::with_capacity(n * (latent + extra));
    for i in 0..n {
        data.extend_from_slice(&codes.z[i * latent..(i + 1) * latent]);
        data.extend((0..k).map(|c| if c as u32 == codes.labels[i] { 1.0 } else { 0.0 }));
        if cont > 0 {
            match codes.continuous.get(i * cont..(i + 1) * cont) {
                Some(c) => data.extend_from_slice(c),
                None => data.extend(std::iter::repeat_n(0.0, cont)),
            }
        }
    }
    Tensor::from_vec(gpu, &[n, latent + extra, 1, 1], &data)
}

/// D's first layer in the conditional GAN: conv(cat(x, one-hot class planes), W), computed as
/// conv(x, W_x) + conv(planes, W_c). A sample's class plane is all ones in its class's channel,
/// so the second term is conv(ones, W_c[:, label]) with the same zero padding: one tiny
/// convolution of a ones image gives the map of every class, and a one-hot product picks each
/// sample's. Exact (see `d_input` for the definition), differentiable to any order, and the K
/// extra channels cost almost nothing instead of K times the image's convolution.
pub fn conditional_first_conv(conv: &Conv2d, x: &Tensor, labels: &[u32], classes: usize) -> Tensor {
    let (n, c, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let ws = conv.weight.shape();
    let (out, kh, kw) = (ws[0], ws[2], ws[3]);
    assert_eq!(ws[1], c + classes, "the first conv takes the image's {c} channels and {classes} class planes");
    let image_part = x.conv2d(&conv.weight.narrow(1, 0, c), conv.stride, conv.pad);
    let (oh, ow) = (image_part.shape()[2], image_part.shape()[3]);
    let class_weights = conv.weight.narrow(1, c, classes).reshape(&[out * classes, 1, kh, kw]);
    let class_maps = Tensor::ones(x.gpu(), &[1, 1, h, w])
        .conv2d(&class_weights, conv.stride, conv.pad)
        .reshape(&[out, classes, oh * ow])
        .permute(&[1, 0, 2])
        .reshape(&[classes, out * oh * ow]);
    let picked = one_hot(x.gpu(), labels, classes).matmul(&class_maps).reshape(&[n, out, oh, ow]);
    let y = image_part.add(&picked);
    match &conv.bias {
        Some(b) => y.add(&b.reshape(&[1, out, 1, 1])),
        None => y,
    }
}

/// D's input by definition: the images, with one-hot class planes appended as channels for the
/// conditional GAN (what `conditional_first_conv` convolves without building it).
pub fn d_input(config: &Config, x: &Tensor, labels: &[u32]) -> Tensor {
    if !config.model.conditional {
        return x.clone();
    }
    let (n, h, w) = (x.shape()[0], x.shape()[2], x.shape()[3]);
    let k = config.model.classes;
    let planes = one_hot(x.gpu(), labels, k).reshape(&[n, k, 1, 1]).expand(&[n, k, h, w]);
    Tensor::cat(&[x, &planes], 1)
}

/// The real/fake score [n, 1] in D's output. The semi-supervised D's K class logits l give
/// D(x) = Z / (Z + 1) with Z = sum exp(l), i.e. the logit log Z = logsumexp(l).
pub fn adversarial_score(config: &Config, out: &Tensor) -> Tensor {
    match config.model.kind {
        GanKind::SemiSupervised => {
            let shift = out.max(&[1], true);
            out.sub(&shift).exp().sum(&[1], true).log().add(&shift)
        }
        _ => out.narrow(1, 0, 1),
    }
}

/// The auxiliary loss on D's output for samples with these codes: ACGAN's class cross-entropy,
/// InfoGAN's mutual-information term (categorical cross-entropy plus a Gaussian term for the
/// continuous codes); none for the others.
pub fn auxiliary_loss(config: &Config, out: &Tensor, codes: &Codes) -> Option<Tensor> {
    let m = &config.model;
    let gpu = out.gpu();
    let n = out.shape()[0];
    match m.kind {
        GanKind::Acgan => {
            let logits = out.narrow(1, 1, m.classes);
            Some(loss::softmax_cross_entropy(&logits, &one_hot(gpu, &codes.labels, m.classes)))
        }
        GanKind::Infogan => {
            let logits = out.narrow(1, 1, m.info_categorical);
            let mut l = loss::softmax_cross_entropy(&logits, &one_hot(gpu, &codes.labels, m.info_categorical));
            if m.info_continuous > 0 {
                let q = out.narrow(1, 1 + m.info_categorical, m.info_continuous);
                let c = Tensor::from_vec(gpu, &[n, m.info_continuous], &codes.continuous);
                // -log N(c; q, 1) up to a constant, averaged.
                l = l.add(&loss::mse(&q, &c).scale(0.5));
            }
            Some(l)
        }
        _ => None,
    }
}

/// The fixed-noise batch's classes or codes: one row of 8 per class for models that take one.
pub fn fixed_labels(config: &Config) -> Vec<u32> {
    let m = &config.model;
    let k = match m.kind {
        GanKind::Infogan => m.info_categorical,
        GanKind::Acgan => m.classes,
        GanKind::Gan if m.conditional => m.classes,
        _ => return vec![0; super::FIXED_SAMPLES],
    };
    (0..k * 8).map(|i| (i / 8) as u32).collect()
}

/// Whether G takes a class or code per sample.
pub fn takes_labels(config: &Config) -> bool {
    g_extra(config) > 0
}

/// How many images one generator run makes at most: longer code lists run in chunks.
pub const GENERATE_CHUNK: usize = 64;

/// Runs a generator in eval mode over codes in chunks of [`GENERATE_CHUNK`]: images
/// [n, C, H, W] in [-1, 1].
pub fn generate(gpu: &Gpu, config: &Config, g: &Sequential, codes: &Codes) -> Vec<f32> {
    generated_chunks(gpu, config, g, codes).iter().flat_map(Tensor::to_vec).collect()
}

/// `generate` without blocking: each chunk's images awaited (a browser).
pub async fn generate_async(gpu: &Gpu, config: &Config, g: &Sequential, codes: &Codes) -> Vec<f32> {
    let mut out = Vec::new();
    for chunk in generated_chunks(gpu, config, g, codes) {
        out.extend(chunk.to_vec_async().await);
    }
    out
}

/// The generator's output for codes in chunks, recorded and not yet read.
fn generated_chunks(gpu: &Gpu, config: &Config, g: &Sequential, codes: &Codes) -> Vec<Tensor> {
    let _no_graph = no_grad();
    let latent = config.model.latent_dim;
    let cont = if config.model.kind == GanKind::Infogan { config.model.info_continuous } else { 0 };
    let n = codes.z.len() / latent;
    (0..n)
        .step_by(GENERATE_CHUNK)
        .map(|start| {
            let count = (n - start).min(GENERATE_CHUNK);
            let chunk = Codes {
                z: codes.z[start * latent..(start + count) * latent].to_vec(),
                labels: if takes_labels(config) { codes.labels[start..start + count].to_vec() } else { vec![] },
                continuous: codes
                    .continuous
                    .get(start * cont..(start + count) * cont)
                    .map(|c| c.to_vec())
                    .unwrap_or_default(),
            };
            run_generator(gpu, config, g, &g_input(gpu, config, &chunk), Mode::Eval)
        })
        .collect()
}

/// G's output for an input batch. With virtual batch norm the fixed reference batch (derived
/// from the seed, so identical after a resume or a reload) runs in front and is cut off after.
pub fn run_generator(gpu: &Gpu, config: &Config, g: &Sequential, input: &Tensor, mode: Mode) -> Tensor {
    if config.model.g_norm != Norm::VirtualBatch {
        return g.forward(input, mode);
    }
    let r = crate::models::dcgan::VBN_REFERENCE;
    let latent = config.model.latent_dim;
    let mut noise = Noise::new(config.train.noise, config.train.seed ^ 0x5642_4e52_4546);
    let k = fixed_labels(config).iter().max().map_or(1, |&m| m as usize + 1);
    let reference = Codes {
        z: noise.sample(r * latent),
        labels: (0..r).map(|i| (i % k) as u32).collect(),
        continuous: vec![0.0; r * config.model.info_continuous],
    };
    let n = input.shape()[0];
    let both = Tensor::cat(&[&g_input(gpu, config, &reference), input], 0);
    g.forward(&both, mode).narrow(0, r, n)
}
