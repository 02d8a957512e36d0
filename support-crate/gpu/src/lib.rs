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
