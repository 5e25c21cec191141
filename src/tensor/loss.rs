//! Losses' elementwise terms with their gradient in one pass (loss.wgsl): the kinds, the
//! launcher, `Tensor::loss_terms` and its gradient rule. CPU reference: the formulas in
//! `loss_grad`'s second-order branch, checked in tests/gan_losses.rs.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use super::launch::{grid_1d, WG_1D};
use super::Tensor;
use crate::autograd::{Backward, Op};
use crate::gpu::wgsl_enum::WgslEnum;
use crate::gpu::{Gpu, GpuBuffer, Kernel, Shader};

crate::wgsl_enum! {
    /// The losses whose elementwise terms and gradient one pass computes (loss.wgsl).
    pub enum LossKind: "LOSS" {
        /// Binary cross-entropy of sigmoid(x) against t: softplus(x) - x t.
        BceWithLogits = 0,
        /// (x - t)².
        SquaredError = 1,
        /// |x - t|.
        AbsoluteError = 2,
    }
}

crate::uniform! {
    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    struct LossParams {
        n: u32,
        _pad: [u32; 3],
    }
}

/// (terms, dterms/dx) of a loss between predictions x and targets t of the same length.
pub fn loss_terms(gpu: &Gpu, kind: LossKind, x: &GpuBuffer, t: &GpuBuffer) -> (GpuBuffer, GpuBuffer) {
    let n = x.len();
    assert_eq!(t.len(), n, "loss: predictions and targets differ in length");
    let (terms, grad) = (gpu.alloc(n), gpu.alloc(n));
    let kernel = Kernel::new(Shader::Loss, "terms_and_grad").with("KIND", kind.code());
    let params = LossParams { n: n as u32, _pad: [0; 3] };
    gpu.dispatch(&kernel, &params, &[x, t], &[&terms, &grad], grid_1d(gpu, n, WG_1D));
    (terms, grad)
}

impl Tensor {
    // ---- losses ----

    /// The elementwise terms of a loss of predictions `self` against `target` (same shape):
    /// BCE with logits, squared or absolute error. One pass computes them together with their
    /// gradient, which the backward pass then only scales (loss.wgsl).
    pub fn loss_terms(&self, kind: LossKind, target: &Tensor) -> Tensor {
        self.check_device(target);
        assert_eq!(
            self.shape(),
            target.shape(),
            "loss: predictions {:?} and targets {:?} differ",
            self.shape(),
            target.shape()
        );
        let (terms, grad) = loss_terms(self.gpu(), kind, self.buffer(), target.buffer());
        self.record(&[self, target], self.shape().to_vec(), terms, Op::LossTerms { kind, grad: Arc::new(grad) }, false)
    }
}

/// d terms / d prediction: the saved values, or for a second order the formula as ops (the
/// saved buffer is a constant to autodiff). The distances' d terms / d target is its negation.
pub(crate) fn loss_grad(b: &Backward, kind: LossKind, saved: &Arc<GpuBuffer>) -> Vec<Option<Tensor>> {
    let (x, t, g) = (b.input(0), b.input(1), b.g);
    let bce = kind == LossKind::BceWithLogits;
    let dx = (b.want(0) || (b.want(1) && !bce)).then(|| {
        let d = if b.create_graph {
            match kind {
                LossKind::BceWithLogits => x.sigmoid().sub(t),
                LossKind::SquaredError => x.sub(t).scale(2.0),
                LossKind::AbsoluteError => x.sub(t).sign(),
            }
        } else {
            Tensor::from_parts(x.gpu(), x.shape().to_vec(), saved.clone(), None)
        };
        d.mul(g)
    });
    let dt = b.want(1).then(|| if bce { x.mul(g).neg() } else { dx.as_ref().expect("computed for dt").neg() });
    vec![dx.filter(|_| b.want(0)), dt]
}
