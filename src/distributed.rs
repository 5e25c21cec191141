//! The MPI transport of data-parallel training (feature `distributed`, through rsmpi over the
//! system's MPI library). `mpirun -n N shadergan train ...` starts N ranks; each finds the
//! others here. A panic on any rank calls `MPI_Abort`, so the job ends with its message instead
//! of leaving the other ranks waiting in a collective forever.

use std::rc::Rc;

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use crate::train::Collective;

/// MPI's world communicator, alive until this is dropped (which finalizes MPI).
pub struct Mpi {
    world: SimpleCommunicator,
    _universe: Universe,
}

impl Mpi {
    /// Starts MPI (a job of one rank when not launched by `mpirun`) and makes every panic abort
    /// the whole job; `None` when MPI was already started.
    pub fn init() -> Option<Rc<Mpi>> {
        let universe = mpi::initialize()?;
        let world = universe.world();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            // SAFETY: MPI is initialised for the life of the process; MPI_Abort only reads the
            // world communicator's handle and never returns.
            unsafe {
                mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, 101);
            }
        }));
        Some(Rc::new(Mpi { world, _universe: universe }))
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_reduce_sum(&self, data: &mut [f32]) {
        let local = data.to_vec();
        self.world.all_reduce_into(&local[..], data, SystemOperation::sum());
    }

    fn all_reduce_min_max(&self, min: &mut [u64], max: &mut [u64]) {
        let (lo, hi) = (min.to_vec(), max.to_vec());
        self.world.all_reduce_into(&lo[..], min, SystemOperation::min());
        self.world.all_reduce_into(&hi[..], max, SystemOperation::max());
    }

    fn broadcast_bytes(&self, data: &mut Vec<u8>) {
        let root = self.world.process_at_rank(0);
        let mut len = data.len() as u64;
        root.broadcast_into(&mut len);
        data.resize(len as usize, 0);
        root.broadcast_into(&mut data[..]);
    }

    fn abort(&self, message: &str) -> ! {
        eprintln!("rank {} of {}: {message}", self.rank(), self.size());
        self.world.abort(1)
    }
}
