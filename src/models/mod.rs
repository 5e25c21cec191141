//! Network builders.

pub mod classifier;
pub mod cyclegan;
pub mod dcgan;
