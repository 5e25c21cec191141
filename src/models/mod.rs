//! Network builders.

pub mod classifier;
pub mod dcgan;
