//! The `Module` trait from a user's side: a layer written outside the crate sits in a
//! `Sequential` beside built-in ones, gets PyTorch's state-dict names and gradients; builder
//! constructors set what they say; `manual_seed` makes initialisation repeatable; a fused
//! convolution + activation is still fused when the convolution arrives as a boxed module.

mod common;
use common::*;
use shadergan::prelude::*;

/// y = x * scale + shift per feature: a layer written here, not in the crate.
struct ScaleShift {
    scale: Tensor,
    shift: Tensor,
}

impl Module for ScaleShift {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Tensor {
        x.mul(&self.scale).add(&self.shift)
    }
    fn named_tensors(&self) -> Vec<(String, Tensor, Role)> {
        vec![("scale".into(), self.scale.clone(), Role::Parameter), ("shift".into(), self.shift.clone(), Role::Buffer)]
    }
}

#[test]
fn a_users_layer_gets_names_parameters_and_gradients_beside_built_in_ones() {
    let gpu = gpu();
    manual_seed(1);
    let custom = ScaleShift {
        scale: Tensor::from_vec(&gpu, &[3], &[1.5, -2.0, 0.5]).requires_grad(),
        shift: Tensor::from_vec(&gpu, &[3], &[0.1, 0.2, 0.3]),
    };
    let net = Sequential::new(vec![Layer::Linear(Linear::new(&gpu, 4, 3))]).push(custom).then(Layer::Tanh);
    let names: Vec<String> = net.named_tensors().into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(names, ["0.weight", "0.bias", "1.scale", "1.shift"]);
    assert_eq!(net.parameters().len(), 3, "the buffer is not a parameter");
    assert_eq!(net.parameter_count(), 4 * 3 + 3 + 3);

    let mut rng = rng("modules");
    let xv = uniform(&mut rng, 2 * 4, -1.0, 1.0);
    let x = tensor(&gpu, &[2, 4], &xv);
    let y = net.forward(&x, Mode::Train);
    let Layer::Linear(lin) = &net.layers[0] else { unreachable!() };
    let (w, b) = (f64s(&lin.weight.to_vec()), f64s(&lin.bias.as_ref().unwrap().to_vec()));
    let (scale, shift) = ([1.5, -2.0, 0.5], [0.1, 0.2, 0.3]);
    let want: Vec<f64> = (0..2)
        .flat_map(|i| {
            let (w, b, xv) = (&w, &b, &xv);
            (0..3).map(move |j| {
                let h = b[j] + (0..4).map(|k| w[j * 4 + k] * xv[i * 4 + k]).sum::<f64>();
                (h * scale[j] + shift[j]).tanh()
            })
        })
        .collect();
    assert_close("Linear -> ScaleShift -> Tanh", &y.to_vec(), &want, 1e-5, 1e-6);
    // The custom layer's parameter gets its gradient through the Sequential.
    let params = net.parameters();
    let grads = grad(&y.sum_all(), &params);
    let g_scale = grads[2].to_vec();
    for j in 0..3 {
        let want: f64 = (0..2)
            .map(|i| {
                let h = b[j] + (0..4).map(|k| w[j * 4 + k] * xv[i * 4 + k]).sum::<f64>();
                let t = (h * scale[j] + shift[j]).tanh();
                (1.0 - t * t) * h
            })
            .sum();
        assert!(
            (g_scale[j] as f64 - want).abs() < 1e-4 * want.abs().max(1.0),
            "d/dscale[{j}]: {} vs {want}",
            g_scale[j]
        );
    }
}

#[test]
fn builders_set_what_they_say_and_manual_seed_repeats_initialisation() {
    let gpu = gpu();
    manual_seed(7);
    let conv = ConvTranspose2d::new(&gpu, 100, 16, 4).stride(2).padding(1).bias(false);
    assert_eq!(conv.weight.shape(), [100, 16, 4, 4]);
    assert!(conv.bias.is_none());
    assert_eq!((conv.stride, conv.pad, conv.output_padding), (2, 1, 0));
    let z = Tensor::zeros(&gpu, &[2, 100, 4, 4]);
    assert_eq!(Module::forward(&conv, &z, Mode::Eval).shape(), [2, 16, 8, 8]);
    let d = Conv2d::new(&gpu, 3, 8, 4).stride(2).padding(1).init(Init::Normal(0.02));
    assert_eq!((d.weight.shape(), d.bias.as_ref().map(|b| b.shape().to_vec())), (&[8, 3, 4, 4][..], Some(vec![8])));
    let std = {
        let w = d.weight.to_vec();
        (w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt()
    };
    assert!((0.012..0.03).contains(&std), "N(0, 0.02) weights have std {std}");
    // PyTorch's default: uniform within 1/sqrt(fan_in).
    let lin = Linear::new(&gpu, 50, 10);
    assert!(lin.weight.to_vec().iter().all(|v| v.abs() <= 1.0 / 50f32.sqrt()));

    manual_seed(42);
    let first = Conv2d::new(&gpu, 2, 4, 3).weight.to_vec();
    manual_seed(42);
    let again = Conv2d::new(&gpu, 2, 4, 3).weight.to_vec();
    let other = Conv2d::new(&gpu, 2, 4, 3).weight.to_vec();
    assert_eq!(first, again, "the same seed draws the same weights");
    assert_ne!(first, other, "the generator moves on");
}

#[test]
fn a_boxed_convolution_before_an_activation_still_runs_fused() {
    let gpu = shadergan::Gpu::new(&GpuOptions::from_env()).expect("a second device");
    let conv = Conv2d::new(&gpu, 8, 16, 4).stride(2).padding(1);
    let net = Sequential::default().push(conv).then(Layer::LeakyRelu(0.2));
    let mut rng = rng("boxed conv");
    let x = tensor(&gpu, &[2, 8, 16, 16], &uniform(&mut rng, 2 * 8 * 16 * 16, -1.0, 1.0));
    let (fused, used) = profiled(&gpu, || net.forward(&x, Mode::Train).to_vec());
    let Layer::Custom(boxed) = &net.layers[0] else { unreachable!() };
    let apart = boxed.forward(&x, Mode::Train).leaky_relu(0.2).to_vec();
    assert_close("fused against apart", &fused, &f64s(&apart), 1e-5, 1e-6);
    if gpu.implicit_convs() {
        assert!(used.iter().any(|k| k.contains("ACTIVATE=1")), "not fused: {used:?}");
    }
}
