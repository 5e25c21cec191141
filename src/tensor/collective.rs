//! The mean over the ranks of a data-parallel job as a differentiable op, for synchronised
//! batch norm: its statistics become the global batch's, and since the op's gradient is the
//! mean over ranks of the incoming gradients, the backward pass averages its reductions too.
//! The transport is set per thread by the trainer that enables it.

use std::cell::RefCell;
use std::rc::Rc;

use super::Tensor;
use crate::autograd::{Backward, Op};
use crate::train::Collective;

thread_local! {
    static RANKS: RefCell<Option<Rc<dyn Collective>>> = const { RefCell::new(None) };
}

/// Makes batch norm on this thread average its statistics over the ranks of `comm` (None:
/// each rank's own batch, the default).
pub fn synchronize_batch_norm(comm: Option<Rc<dyn Collective>>) {
    RANKS.with(|r| *r.borrow_mut() = comm);
}

/// The ranks batch norm averages over on this thread, when synchronised.
pub fn batch_norm_ranks() -> Option<usize> {
    RANKS.with(|r| r.borrow().as_ref().map(|c| c.size()))
}

impl Tensor {
    /// The element-wise mean of this tensor over the ranks set by [`synchronize_batch_norm`]
    /// (the tensor itself when none are). Every rank must call it in the same order.
    pub fn mean_over_ranks(&self) -> Tensor {
        let Some(comm) = RANKS.with(|r| r.borrow().clone()) else { return self.clone() };
        let mut host = self.to_vec();
        comm.all_reduce_sum(&mut host);
        let n = comm.size() as f32;
        host.iter_mut().for_each(|v| *v /= n);
        let out = self.gpu().upload(&host);
        self.record(&[self], self.shape().to_vec(), out, Op::MeanOverRanks, false)
    }
}

/// d/dx of the mean over ranks: the mean over ranks of the gradients (every rank's output
/// depends on every rank's input).
pub(crate) fn mean_over_ranks_grad(b: &Backward) -> Vec<Option<Tensor>> {
    vec![Some(b.g.mean_over_ranks())]
}
