//! The raw launchers of every op family on buffers, gathered for tests, benches and the
//! optimizers: each lives in its family's module (elementwise, reduce, movement, matmul, conv,
//! norm, loss, optim_kernels) beside its `Tensor` methods and gradient rules.
// Without the `internals` feature only the engine uses this facade, and not every launcher.
#![cfg_attr(not(feature = "internals"), allow(unused_imports))]

pub use super::conv::{
    conv2d_backward_input, conv2d_backward_weight, conv2d_backward_weight_from_cols, conv2d_backward_weight_reusing,
    conv2d_forward, conv2d_forward_implicit, conv2d_forward_with_cols, ConvEpilogue, ConvGeometry,
};
pub use super::elementwise::{binary, unary, unary_backward, BinaryOp, UnaryOp};
pub use super::launch::{broadcast_strides, contiguous_strides, MAX_RANK};
pub use super::loss::{loss_terms, LossKind};
pub use super::matmul::{matmul, AOperand, BOperand};
pub use super::movement::{copy, fill, gather, reflect_pad, reflect_pad_backward, transpose, ReflectGeometry};
pub use super::norm::{batch_norm_backward, batch_norm_forward, batch_norm_stats, BatchNormParams};
pub use super::optim_kernels::{
    adam_step, clip_in_place, rmsprop_step, sgd_step, AdamParams, RmspropParams, SgdParams,
};
pub use super::reduce::{reduce, ReduceOp};
