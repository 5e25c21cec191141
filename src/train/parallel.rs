//! Data-parallel training across processes: what every rank does the same way, whatever carries
//! the bytes. The transport is a [`Collective`] (MPI under the `distributed` feature); a run
//! without one is a single rank and none of this costs anything.
//!
//! `train.batch_size` is the global batch. Every rank draws the same global batch (same seeds,
//! same sampler) and keeps its own contiguous share, so each sample is seen by exactly one rank;
//! the gradients are averaged with one all-reduce per network over a flat buffer, and every rank
//! applies the same update. For networks without batch norm the result is the single-rank run's
//! up to float reassociation.

use std::rc::Rc;

use super::{TrainState, Trainable};
use crate::checkpoint::CheckpointError;
use crate::optim::{Optimizer, OptimizerState};
use crate::tensor::{no_grad, Tensor};

/// The operations data-parallel training needs from a transport.
pub trait Collective {
    /// This process's rank, 0 to size - 1.
    fn rank(&self) -> usize;
    /// How many ranks run.
    fn size(&self) -> usize;
    /// Element-wise sum over all ranks, in place.
    fn all_reduce_sum(&self, data: &mut [f32]);
    /// Element-wise minimum and maximum over all ranks of `data`, in place (two halves).
    fn all_reduce_min_max(&self, min: &mut [u64], max: &mut [u64]);
    /// Rank 0's bytes on every rank (`data` is resized to rank 0's length).
    fn broadcast_bytes(&self, data: &mut Vec<u8>);
    /// Ends every rank of the job with `message` (MPI_Abort), never returning.
    fn abort(&self, message: &str) -> !;
}

/// Which share of each global batch this process trains on, and the transport to the others.
#[derive(Clone, Default)]
pub struct Shard {
    comm: Option<Rc<dyn Collective>>,
    /// Time spent in the all-reduce itself, and in the whole averaging (the readback also
    /// waits for the backward pass to finish on the device), for the log.
    timing: Rc<std::cell::Cell<(std::time::Duration, std::time::Duration)>>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shard(rank {} of {})", self.rank(), self.ranks())
    }
}

impl Shard {
    /// A single process: the whole batch, no communication.
    pub fn single() -> Self {
        Shard::default()
    }

    /// A rank of a data-parallel job (a job of one rank communicates nothing).
    pub fn new(comm: Rc<dyn Collective>) -> Self {
        Shard { comm: Some(comm), timing: Rc::default() }
    }

    /// Time this rank has spent in all-reduces of gradients, and averaging them in all
    /// (readback, which waits for the device, all-reduce, upload).
    pub fn averaging_time(&self) -> (std::time::Duration, std::time::Duration) {
        self.timing.get()
    }

    /// The transport, when there are other ranks to talk to.
    fn others(&self) -> Option<&Rc<dyn Collective>> {
        self.comm.as_ref().filter(|c| c.size() > 1)
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.comm.as_ref().map_or(0, |c| c.rank())
    }

    /// How many ranks share each batch.
    pub fn ranks(&self) -> usize {
        self.comm.as_ref().map_or(1, |c| c.size())
    }

    /// Whether this process writes the run's files (rank 0).
    pub fn is_leader(&self) -> bool {
        self.rank() == 0
    }

    /// The transport, when there are other ranks.
    pub fn collective(&self) -> Option<&Rc<dyn Collective>> {
        self.others()
    }

    /// This rank's share of a global batch of `global` items, as a range of item indices.
    pub fn share(&self, global: usize) -> std::ops::Range<usize> {
        let per = global / self.ranks();
        self.rank() * per..(self.rank() + 1) * per
    }

    /// This rank's items of `values`, a global batch of items of `per_item` values each.
    pub fn local<T>(&self, mut values: Vec<T>, per_item: usize) -> Vec<T> {
        if self.ranks() == 1 || values.is_empty() {
            return values; // the whole batch, not copied
        }
        let r = self.share(values.len() / per_item);
        values.truncate(r.end * per_item);
        values.split_off(r.start * per_item)
    }

    /// Checks that `global` items split evenly over the ranks.
    pub fn check_batch(&self, key: &str, global: usize) -> Result<(), String> {
        let n = self.ranks();
        if !global.is_multiple_of(n) || global / n == 0 {
            return Err(format!(
                "{key} = {global} is the global batch and must split evenly over the {n} ranks (use a multiple of {n})"
            ));
        }
        Ok(())
    }

    /// The mean over ranks of each value (losses and scores for the log).
    pub fn mean(&self, values: &mut [f32]) {
        if let Some(c) = self.others() {
            c.all_reduce_sum(values);
            values.iter_mut().for_each(|v| *v /= c.size() as f32);
        }
    }

    /// The gradients averaged over ranks: one all-reduce over all of them as one flat buffer.
    pub fn average(&self, grads: &[Tensor]) -> Vec<Tensor> {
        let Some(c) = self.others() else { return grads.to_vec() };
        let started = std::time::Instant::now();
        let _no_graph = no_grad();
        let flat: Vec<Tensor> = grads.iter().map(|g| g.reshape(&[g.numel()])).collect();
        let mut host = Tensor::cat(&flat.iter().collect::<Vec<_>>(), 0).to_vec();
        let reducing = std::time::Instant::now();
        c.all_reduce_sum(&mut host);
        let reduced = reducing.elapsed();
        let scale = 1.0 / c.size() as f32;
        let mut offset = 0;
        let averaged = grads
            .iter()
            .map(|g| {
                let part: Vec<f32> = host[offset..offset + g.numel()].iter().map(|v| v * scale).collect();
                offset += g.numel();
                Tensor::from_vec(g.gpu(), g.shape(), &part)
            })
            .collect();
        let (r, all) = self.timing.get();
        self.timing.set((r + reduced, all + started.elapsed()));
        averaged
    }

    /// Takes a model's optimizers over for a data-parallel job: checks that the global batch
    /// splits over the ranks, and makes each optimizer's step average the gradients first.
    pub fn adopt(&self, global_batch: usize, optimizers: [&mut Box<dyn Optimizer>; 2]) -> Result<(), String> {
        self.check_batch("train.batch_size", global_batch)?;
        if self.others().is_some() {
            for opt in optimizers {
                // A stand-in for the moment the optimizer moves into its wrapper.
                let inner = std::mem::replace(opt, Box::new(crate::optim::Sgd::new(0.0, 0.0)));
                *opt = Box::new(AveragingOptimizer { inner, shard: self.clone() });
            }
        }
        Ok(())
    }

    /// Makes every rank start from rank 0's model: its networks and its training state (the
    /// seeds and positions included), so no rank depends on files it may not see.
    pub fn sync_from_leader<M: Trainable + ?Sized>(&self, model: &mut M) -> Result<(), CheckpointError> {
        let Some(c) = self.others() else { return Ok(()) };
        let mut bytes = Vec::new();
        if self.is_leader() {
            let mut state = TrainState::new(model.steps_done());
            model.save_state(&mut state);
            bytes = super::checkpoint_unit::snapshot(model, &state)?;
        }
        c.broadcast_bytes(&mut bytes);
        if !self.is_leader() {
            super::checkpoint_unit::restore_snapshot(model, &bytes)?;
        }
        Ok(())
    }

    /// Stops with an error when the ranks' weights differ (they must stay bit-identical).
    pub fn check_in_step<M: Trainable + ?Sized>(&self, model: &M) -> Result<(), String> {
        let Some(c) = self.others() else { return Ok(()) };
        // Parameters only: batch norm's running statistics follow each rank's own batches.
        let mut sum = 0u64;
        for (_, net) in model.networks() {
            for (_, t, role) in net.named_tensors() {
                if role == crate::nn::Role::Parameter {
                    sum = t.to_vec().iter().fold(sum, |a, v| a.rotate_left(5) ^ v.to_bits() as u64);
                }
            }
        }
        let (mut lo, mut hi) = ([sum], [sum]);
        c.all_reduce_min_max(&mut lo, &mut hi);
        if lo != hi {
            return Err(format!(
                "the ranks' weights drifted apart at step {} (checksums {:016x} to {:016x}); every rank must run \
                 the same build on the same kind of adapter",
                model.steps_done(),
                lo[0],
                hi[0]
            ));
        }
        Ok(())
    }
}

/// An optimizer whose step averages the gradients over all ranks first.
struct AveragingOptimizer {
    inner: Box<dyn Optimizer>,
    shard: Shard,
}

impl Optimizer for AveragingOptimizer {
    fn step(&mut self, params: &[Tensor], grads: &[Tensor]) {
        let averaged = self.shard.average(grads);
        self.inner.step(params, &averaged);
    }
    fn state(&self) -> OptimizerState {
        self.inner.state()
    }
    fn load_state(&mut self, params: &[Tensor], state: &OptimizerState) -> Result<(), String> {
        self.inner.load_state(params, state)
    }
    fn set_lr(&mut self, lr: f32) {
        self.inner.set_lr(lr)
    }
    fn lr(&self) -> f32 {
        self.inner.lr()
    }
}
