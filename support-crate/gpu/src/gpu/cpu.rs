//! CPU references of the GPU kernels, with rayon: what the tests compare the GPU with, and
//! the other side of every GPU-vs-CPU figure in Module 3.

use rayon::prelude::*;

use crate::images::{Image, gaussian_weights};

/// [`Gpu::fma_chain`](super::Gpu::fma_chain) on all cores.
pub fn fma_chain(input: &[f32], rounds: u32) -> Vec<f32> {
    let mut output = input.to_vec();
    output
        .par_chunks_mut(BLOCK)
        .for_each(|block| with_fma(|| fma_rounds(block, rounds)));
    output
}

/// [`Gpu::fma_chain`](super::Gpu::fma_chain) on one core.
pub fn fma_chain_sequential(input: &[f32], rounds: u32) -> Vec<f32> {
    let mut output = input.to_vec();
    output
        .chunks_mut(BLOCK)
        .for_each(|block| with_fma(|| fma_rounds(block, rounds)));
    output
}

/// Elements updated together: one chain per element is a chain of dependent operations
/// (latency-bound), 64 of them side by side fill the SIMD lanes and hide the latency.
const BLOCK: usize = 64;

#[inline(always)]
fn fma_rounds(block: &mut [f32], rounds: u32) {
    for _ in 0..rounds {
        for x in block.iter_mut() {
            *x = x.mul_add(0.999, 0.001);
        }
    }
}

/// Runs `work` compiled for AVX2 and FMA when the processor has them: without the `fma`
/// feature, `mul_add` is a library call and the CPU side of every comparison would be
/// several times too slow.
#[inline(always)]
fn with_fma<T>(work: impl FnOnce() -> T) -> T {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        fn fused<T>(work: impl FnOnce() -> T) -> T {
            work()
        }
        // SAFETY: the features were detected just above.
        return unsafe { fused(work) };
    }
    work()
}

/// The sum, on all cores, in `f64` so that it is the better of the two answers.
pub fn sum(input: &[f32]) -> f32 {
    input.par_iter().map(|&x| f64::from(x)).sum::<f64>() as f32
}

/// `C = A B`, row-major, one core, loops in `i k j` order so the inner loop is contiguous.
pub fn matmul_sequential(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    for (c_row, a_row) in c.chunks_mut(n).zip(a.chunks(k)) {
        with_fma(|| multiply_row(c_row, a_row, b, n));
    }
    c
}

/// `C = A B` on all cores: one row of C per task, the same `i k j` loops.
pub fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    assert_eq!(
        (a.len(), b.len()),
        (m * k, k * n),
        "matmul: shapes do not match"
    );
    let mut c = vec![0.0; m * n];
    c.par_chunks_mut(n)
        .zip(a.par_chunks(k))
        .for_each(|(c_row, a_row)| with_fma(|| multiply_row(c_row, a_row, b, n)));
    c
}

#[inline(always)]
fn multiply_row(c_row: &mut [f32], a_row: &[f32], b: &[f32], n: usize) {
    for (&a_ik, b_row) in a_row.iter().zip(b.chunks(n)) {
        for (c, &b_kj) in c_row.iter_mut().zip(b_row) {
            *c = a_ik.mul_add(b_kj, *c);
        }
    }
}

/// [`Gpu::blur`](super::Gpu::blur) on all cores, one row per task.
pub fn blur(image: &Image, radius: u32) -> Image {
    let weights = gaussian_weights(radius);
    let r = radius as i64;
    let rows = per_row(image, |x, y| {
        let mut sum = 0.0;
        let mut w = 0;
        for dy in -r..=r {
            for dx in -r..=r {
                sum += weights[w] * image.clamped(x + dx, y + dy);
                w += 1;
            }
        }
        sum
    });
    Image::new(image.width(), image.height(), rows)
}

/// [`Gpu::edges`](super::Gpu::edges) on all cores: the magnitude of the Sobel gradient.
pub fn edges(image: &Image) -> Image {
    let pixels = per_row(image, |x, y| {
        let p = |dx: i64, dy: i64| image.clamped(x + dx, y + dy);
        let gx = (p(1, -1) + 2.0 * p(1, 0) + p(1, 1)) - (p(-1, -1) + 2.0 * p(-1, 0) + p(-1, 1));
        let gy = (p(-1, 1) + 2.0 * p(0, 1) + p(1, 1)) - (p(-1, -1) + 2.0 * p(0, -1) + p(1, -1));
        (gx * gx + gy * gy).sqrt()
    });
    Image::new(image.width(), image.height(), pixels)
}

fn per_row(image: &Image, pixel: impl Fn(i64, i64) -> f32 + Sync) -> Vec<f32> {
    let width = image.width();
    let mut out = vec![0.0; width * image.height()];
    out.par_chunks_mut(width).enumerate().for_each(|(y, row)| {
        for (x, value) in row.iter_mut().enumerate() {
            *value = pixel(x as i64, y as i64);
        }
    });
    out
}
