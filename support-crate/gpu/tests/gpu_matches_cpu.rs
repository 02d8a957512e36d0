//! Every GPU kernel against its rayon reference, on whatever adapter this machine has
//! (lavapipe in CI). Sizes are odd on purpose: edges and partial workgroups are where
//! kernels go wrong.

use parcours_gpu::gpu::{self, MatmulKernel, cpu};
use parcours_gpu::images::Image;
use parcours_gpu::passwords::FastHash;

fn ramp(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32 / 16_777_216.0
                - 0.5
        })
        .collect()
}

fn assert_close(gpu: &[f32], cpu: &[f32], tolerance: f32, what: &str) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths differ");
    for (i, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        assert!(
            (g - c).abs() <= tolerance * (1.0 + c.abs()),
            "{what}: element {i}: GPU {g}, CPU {c}"
        );
    }
}

#[test]
fn map_and_fma_chain() {
    let gpu = gpu::gpu().unwrap();
    let x = ramp(100_003, 1);
    let squares = gpu.map("x * x + 1.0", &x).unwrap();
    let expected: Vec<f32> = x.iter().map(|v| v * v + 1.0).collect();
    assert_close(&squares.value, &expected, 1e-6, "map");
    let chained = gpu.fma_chain(&x, 100).unwrap();
    assert_close(&chained.value, &cpu::fma_chain(&x, 100), 1e-5, "fma_chain");
    assert_eq!(cpu::fma_chain(&x, 3), cpu::fma_chain_sequential(&x, 3));
}

#[test]
fn a_map_larger_than_one_dispatch_row() {
    // 65 535 workgroups of 256 cover 16.7 M elements: go past it to use the y dimension.
    let gpu = gpu::gpu().unwrap();
    let x = vec![2.0f32; 17_000_000];
    let doubled = gpu.map("x * 2.0", &x).unwrap();
    assert!(doubled.value.iter().all(|&v| v == 4.0));
}

#[test]
fn sum() {
    let gpu = gpu::gpu().unwrap();
    for len in [1, 255, 256, 257, 1_000_001] {
        let x = ramp(len, 7);
        let got = gpu.sum(&x).unwrap().value;
        let want = cpu::sum(&x);
        assert!(
            (got - want).abs() <= 1e-3 * (1.0 + want.abs()),
            "sum of {len}: GPU {got}, CPU {want}"
        );
    }
}

#[test]
fn matmul_kernels() {
    let gpu = gpu::gpu().unwrap();
    for (m, k, n) in [(1, 1, 1), (37, 29, 45), (64, 64, 64), (130, 70, 65)] {
        let (a, b) = (ramp(m * k, 3), ramp(k * n, 5));
        let reference = cpu::matmul_sequential(&a, &b, m, k, n);
        assert_close(
            &cpu::matmul(&a, &b, m, k, n),
            &reference,
            1e-5,
            "cpu::matmul",
        );
        for kernel in MatmulKernel::ALL {
            let c = gpu.matmul(kernel, &a, &b, m, k, n).unwrap();
            assert_close(
                &c.value,
                &reference,
                1e-4,
                &format!("{kernel:?} {m}x{k}x{n}"),
            );
        }
    }
}

#[test]
fn blur_and_edges() {
    let gpu = gpu::gpu().unwrap();
    let scene = Image::scene(97, 61);
    for radius in [0, 1, 3] {
        let blurred = gpu.blur(&scene, radius).unwrap().value;
        let difference = blurred.max_difference(&cpu::blur(&scene, radius));
        assert!(difference < 1e-5, "blur radius {radius}: {difference}");
    }
    let edges = gpu.edges(&scene).unwrap().value;
    assert!(edges.max_difference(&cpu::edges(&scene)) < 1e-4);
    assert!(
        edges.pixels().iter().any(|&p| p > 0.5),
        "the scene has edges"
    );
}

#[test]
fn password_hashes() {
    let gpu = gpu::gpu().unwrap();
    // Each found password hashes, on the CPU, to the digest it was searched for.
    let md5_of_zz9 = [
        0xe0, 0xdf, 0x37, 0xad, 0x69, 0x0a, 0x0e, 0xff, 0xed, 0x4b, 0x5a, 0xcc, 0xbe, 0x85, 0xf0,
        0x47,
    ];
    let found = gpu
        .crack(
            FastHash::Md5,
            &md5_of_zz9,
            "abcdefghijklmnopqrstuvwxyz0123456789",
            3,
        )
        .unwrap();
    assert_eq!(found.value.as_deref(), Some("zz9"));
    assert!(gpu.hash_rate(FastHash::Md5, 1 << 20).unwrap() > 0.0);
}

#[test]
fn transfer_bandwidth_is_measured() {
    let gpu = gpu::gpu().unwrap();
    let bandwidth = gpu.transfer_bandwidth(8 << 20, 3).unwrap();
    assert!(
        bandwidth.upload > 1e6 && bandwidth.download > 1e6,
        "{bandwidth:?}"
    );
}

#[test]
fn the_adapter_describes_itself() {
    let gpu = gpu::gpu().unwrap();
    let table = gpu.describe();
    assert!(table.rows().iter().any(|row| row[1] == gpu.name()));
    assert!(!gpu::adapters().is_empty());
}
