//! # parcours-gpu — Module 3 of the course: GPU computing
//!
//! Loaded by the first cell of each Module 3 notebook (`:dep parcours-gpu = ...`); the
//! toolbox ([`parcours`]) is preloaded in every notebook.
//!
//! - [`gpu`] — wgpu on the best adapter (lavapipe without a GPU): WGSL kernels for maps,
//!   reductions, matrix products, images and password hashes, timed, with CPU references.
//! - [`images`] — grey images: a generated scene, PNG in and out, shown inline.
//! - [`passwords`] — testing the strength of a password: keyspaces, times to crack, MD5 and
//!   SHA-256 cracked with SIMD on every core, and the slow hashes (bcrypt, Argon2) that resist.
#![warn(missing_docs)]

pub mod gpu;
pub mod images;
pub mod passwords;

/// Module 1's crate, re-exported so that this crate links it as the dylib it is: the libraries
/// both use (sha2, cfg-if...) then exist once in a kernel that loads both (notebooks 13, 35);
/// otherwise rustc refuses the cell ("cannot satisfy dependencies so `sha2` only shows up
/// once"). docs/architecture.md.
pub use parcours_limits;
