//! Network builders.

pub mod dcgan;
