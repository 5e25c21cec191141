//! The command line's larger commands, beside `main.rs` (the parser and the dispatch): each a
//! thin layer over the library.

pub mod bench;
pub mod classify;
pub mod host_speed;
