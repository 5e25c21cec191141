//! Optimizers as in-place GPU kernels. Their state (moments, step count) is exposed so training
//! state can be checkpointed separately from the model.

use crate::tensor::kernels::{self, AdamParams, RmspropParams, SgdParams};
use crate::tensor::Tensor;

/// Named state tensors of an optimizer, in parameter order, plus its step count.
pub struct OptimizerState {
    /// Updates taken.
    pub step: u64,
    /// Named moment buffers, one per parameter and kind.
    pub tensors: Vec<(String, Vec<f32>)>,
}

/// A rule that updates parameters from their gradients, with state that checkpoints save.
pub trait Optimizer {
    /// Updates each parameter in place from its gradient.
    fn step(&mut self, params: &[Tensor], grads: &[Tensor]);
    /// The state to checkpoint.
    fn state(&self) -> OptimizerState;
    /// Restores `state` saved for `params`; an error says what does not match.
    fn load_state(&mut self, params: &[Tensor], state: &OptimizerState) -> Result<(), String>;
    /// Sets the learning rate.
    fn set_lr(&mut self, lr: f32);
    /// The learning rate.
    fn lr(&self) -> f32;
}

fn check_pairs(params: &[Tensor], grads: &[Tensor]) {
    assert_eq!(params.len(), grads.len(), "one gradient per parameter");
    for (p, g) in params.iter().zip(grads) {
        assert_eq!(p.shape(), g.shape(), "gradient shape {:?} for parameter {:?}", g.shape(), p.shape());
    }
}

/// Zero-initialised state buffers, one per parameter, created on first use.
fn ensure_state(state: &mut Vec<Tensor>, params: &[Tensor]) {
    if state.len() != params.len() {
        *state = params.iter().map(|p| Tensor::zeros(p.gpu(), p.shape())).collect();
    }
}

fn export(prefix: &str, tensors: &[Tensor]) -> Vec<(String, Vec<f32>)> {
    tensors.iter().enumerate().map(|(i, t)| (format!("{prefix}.{i}"), t.to_vec())).collect()
}

fn import(prefix: &str, params: &[Tensor], state: &OptimizerState) -> Result<Vec<Tensor>, String> {
    // An optimizer saved before its first step has no buffers yet; they start at zero on use.
    if state.step == 0 && state.tensors.is_empty() {
        return Ok(vec![]);
    }
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = format!("{prefix}.{i}");
            let (_, data) = state
                .tensors
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| format!("optimizer state has no '{name}'"))?;
            if data.len() != p.numel() {
                return Err(format!(
                    "optimizer state '{name}' has {} values, parameter {:?} needs {}",
                    data.len(),
                    p.shape(),
                    p.numel()
                ));
            }
            Ok(Tensor::from_vec(p.gpu(), p.shape(), data))
        })
        .collect()
}

/// Adam (PyTorch semantics; weight decay added to the gradient). GANs use beta1 = 0.5.
pub struct Adam {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the second moment's square root.
    pub eps: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    t: u64,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl Adam {
    /// Adam with PyTorch's defaults for eps (1e-8) and no weight decay.
    pub fn new(lr: f32, beta1: f32, beta2: f32) -> Self {
        Adam { lr, beta1, beta2, eps: 1e-8, weight_decay: 0.0, t: 0, m: vec![], v: vec![] }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &[Tensor], grads: &[Tensor]) {
        check_pairs(params, grads);
        ensure_state(&mut self.m, params);
        ensure_state(&mut self.v, params);
        self.t += 1;
        let t = self.t as i32;
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            let hp = AdamParams {
                n: p.numel() as u32,
                lr: self.lr,
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
                weight_decay: self.weight_decay,
                correction1: (1.0 / (1.0 - (self.beta1 as f64).powi(t))) as f32,
                correction2: (1.0 / (1.0 - (self.beta2 as f64).powi(t))) as f32,
            };
            kernels::adam_step(p.gpu(), &hp, g.buffer(), p.buffer(), self.m[i].buffer(), self.v[i].buffer());
        }
    }

    fn state(&self) -> OptimizerState {
        let mut tensors = export("exp_avg", &self.m);
        tensors.extend(export("exp_avg_sq", &self.v));
        OptimizerState { step: self.t, tensors }
    }

    fn load_state(&mut self, params: &[Tensor], state: &OptimizerState) -> Result<(), String> {
        self.m = import("exp_avg", params, state)?;
        self.v = import("exp_avg_sq", params, state)?;
        self.t = state.step;
        Ok(())
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }
    fn lr(&self) -> f32 {
        self.lr
    }
}

/// SGD with momentum (PyTorch's form: buf = momentum * buf + g; p -= lr * buf).
pub struct Sgd {
    /// Learning rate.
    pub lr: f32,
    /// Momentum (0: plain SGD).
    pub momentum: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    t: u64,
    buf: Vec<Tensor>,
}

impl Sgd {
    /// SGD with momentum and no weight decay.
    pub fn new(lr: f32, momentum: f32) -> Self {
        Sgd { lr, momentum, weight_decay: 0.0, t: 0, buf: vec![] }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &[Tensor], grads: &[Tensor]) {
        check_pairs(params, grads);
        ensure_state(&mut self.buf, params);
        self.t += 1;
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            let hp = SgdParams {
                n: p.numel() as u32,
                lr: self.lr,
                momentum: self.momentum,
                weight_decay: self.weight_decay,
            };
            kernels::sgd_step(p.gpu(), &hp, g.buffer(), p.buffer(), self.buf[i].buffer());
        }
    }

    fn state(&self) -> OptimizerState {
        OptimizerState { step: self.t, tensors: export("momentum_buffer", &self.buf) }
    }

    fn load_state(&mut self, params: &[Tensor], state: &OptimizerState) -> Result<(), String> {
        self.buf = import("momentum_buffer", params, state)?;
        self.t = state.step;
        Ok(())
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }
    fn lr(&self) -> f32 {
        self.lr
    }
}

/// RMSprop (PyTorch's defaults: alpha 0.99, eps 1e-8), the WGAN paper's optimizer.
pub struct RmsProp {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the running mean of squares.
    pub alpha: f32,
    /// Added to the root of the running mean.
    pub eps: f32,
    t: u64,
    square_avg: Vec<Tensor>,
}

impl RmsProp {
    /// RMSprop with PyTorch's defaults (alpha 0.99, eps 1e-8).
    pub fn new(lr: f32) -> Self {
        RmsProp { lr, alpha: 0.99, eps: 1e-8, t: 0, square_avg: vec![] }
    }
}

impl Optimizer for RmsProp {
    fn step(&mut self, params: &[Tensor], grads: &[Tensor]) {
        check_pairs(params, grads);
        ensure_state(&mut self.square_avg, params);
        self.t += 1;
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            let hp = RmspropParams { n: p.numel() as u32, lr: self.lr, alpha: self.alpha, eps: self.eps };
            kernels::rmsprop_step(p.gpu(), &hp, g.buffer(), p.buffer(), self.square_avg[i].buffer());
        }
    }

    fn state(&self) -> OptimizerState {
        OptimizerState { step: self.t, tensors: export("square_avg", &self.square_avg) }
    }

    fn load_state(&mut self, params: &[Tensor], state: &OptimizerState) -> Result<(), String> {
        self.square_avg = import("square_avg", params, state)?;
        self.t = state.step;
        Ok(())
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }
    fn lr(&self) -> f32 {
        self.lr
    }
}

/// Clamps every parameter into [-c, c] (WGAN with weight clipping).
pub fn clip_weights(params: &[Tensor], c: f32) {
    for p in params {
        kernels::clip_in_place(p.gpu(), p.buffer(), -c, c);
    }
}
