//! What the benchmark programs of this crate share.

pub mod procfs;
