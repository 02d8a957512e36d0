//! Module 3's figures on this machine's adapter: every kernel on the GPU and on the CPU
//! (rayon, all cores), as ratios measured in one run. `gpu_figures [--small]` prints
//! `name value` lines that `tests/bench/module3_gpu.py` reads, then a readable summary.
//!
//! Kernel times come from GPU timestamps where the adapter has them; each is the best of a
//! few runs, after one warm-up run that compiles the kernel. Each comparison gives both sides
//! the same problem: the same matrix size, the same password keyspace, and for hashing the
//! same work per candidate (every step of the hash: the CPU crackers' shortcuts are measured
//! too, and named as such).

use std::time::{Duration, Instant};

use parcours_gpu::gpu::{self, MatmulKernel, Timed, cpu};
use parcours_gpu::images::Image;
use parcours_gpu::passwords::{self, FastHash, Simd, Work};

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    f();
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(f());
            started.elapsed()
        })
        .min()
        .unwrap()
}

fn best_gpu<T>(runs: usize, mut f: impl FnMut() -> Timed<T>) -> (Duration, Duration) {
    f();
    let timed: Vec<_> = (0..runs).map(|_| f()).collect();
    let kernel = timed.iter().map(|t| t.kernel).min().unwrap();
    let total = timed.iter().map(|t| t.total()).min().unwrap();
    (kernel, total)
}

fn figure(name: &str, value: f64) {
    println!("{name} {value:.6e}");
}

fn main() {
    let small = std::env::args().any(|a| a == "--small");
    let gpu = gpu::gpu().unwrap_or_else(|error| panic!("{error}"));
    let info = gpu.info();
    println!("adapter {}", info.name.replace(' ', "_"));
    println!("adapter_type {:?}", info.device_type);
    println!("timestamps {}", gpu.has_timestamps());
    println!("cpu_threads {}", rayon::current_num_threads());
    let runs = 3;

    let bytes = if small { 16 << 20 } else { 1 << 30 };
    let bandwidth = gpu.transfer_bandwidth(bytes, runs).unwrap();
    figure("upload_bytes_per_second", bandwidth.upload);
    figure("download_bytes_per_second", bandwidth.download);

    // Low arithmetic intensity: one multiply-add per 8 bytes.
    let largest_binding = gpu.limits().max_storage_buffer_binding_size as usize / 4;
    let n = if small {
        1 << 22
    } else {
        (1 << 26).min(largest_binding)
    };
    let x: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 / 1000.0).collect();
    for rounds in [1u32, 64, 1024] {
        let (kernel, total) = best_gpu(runs, || gpu.fma_chain(&x, rounds).unwrap());
        let cpu_time = best(runs, || cpu::fma_chain(&x, rounds));
        let flop = 2.0 * rounds as f64 * n as f64;
        figure(
            &format!("fma{rounds}_gpu_flops"),
            flop / kernel.as_secs_f64(),
        );
        figure(
            &format!("fma{rounds}_gpu_with_transfers_flops"),
            flop / total.as_secs_f64(),
        );
        figure(
            &format!("fma{rounds}_cpu_flops"),
            flop / cpu_time.as_secs_f64(),
        );
    }

    let (kernel, total) = best_gpu(runs, || gpu.sum(&x).unwrap());
    let cpu_time = best(runs, || cpu::sum(&x));
    figure(
        "sum_gpu_bytes_per_second",
        (n * 4) as f64 / kernel.as_secs_f64(),
    );
    figure(
        "sum_gpu_with_transfers_bytes_per_second",
        (n * 4) as f64 / total.as_secs_f64(),
    );
    figure(
        "sum_cpu_bytes_per_second",
        (n * 4) as f64 / cpu_time.as_secs_f64(),
    );

    // lavapipe runs the GPU model on the CPU: sizes that take seconds there, not hours.
    let software = gpu.is_software();
    let size = if small {
        256
    } else if software {
        1024
    } else {
        4096
    };
    let a: Vec<f32> = (0..size * size).map(|i| (i % 17) as f32 / 17.0).collect();
    let flop = 2.0 * (size as f64).powi(3);
    for kernel in MatmulKernel::ALL {
        let repeat = if small || software { 1 } else { 5 };
        let (time, _) = best_gpu(runs, || {
            gpu.matmul_repeated(kernel, &a, &a, size, size, size, repeat)
                .unwrap()
        });
        figure(
            &format!("matmul_{kernel:?}_gpu_flops").to_lowercase(),
            flop / time.as_secs_f64(),
        );
    }
    // The CPU multiplies the same matrices: a rate at another size would measure other
    // caches, not the same problem.
    println!("matmul_size {size}");
    let cpu_time = best(1, || cpu::matmul(&a, &a, size, size, size));
    figure("matmul_cpu_flops", flop / cpu_time.as_secs_f64());

    let side = if small {
        512
    } else if software {
        2048
    } else {
        4096
    };
    let scene = Image::scene(side, side);
    let (kernel, total) = best_gpu(runs, || gpu.blur(&scene, 4).unwrap());
    let cpu_time = best(runs, || cpu::blur(&scene, 4));
    let pixels = (side * side) as f64;
    figure("blur_gpu_pixels_per_second", pixels / kernel.as_secs_f64());
    figure(
        "blur_gpu_with_transfers_pixels_per_second",
        pixels / total.as_secs_f64(),
    );
    figure(
        "blur_cpu_pixels_per_second",
        pixels / cpu_time.as_secs_f64(),
    );
    let (kernel, total) = best_gpu(runs, || gpu.edges(&scene).unwrap());
    let cpu_time = best(runs, || cpu::edges(&scene));
    figure("edges_gpu_pixels_per_second", pixels / kernel.as_secs_f64());
    figure(
        "edges_gpu_with_transfers_pixels_per_second",
        pixels / total.as_secs_f64(),
    );
    figure(
        "edges_cpu_pixels_per_second",
        pixels / cpu_time.as_secs_f64(),
    );

    let candidates = if small {
        1 << 22
    } else if software {
        1 << 26
    } else {
        1 << 34
    };
    let seconds = Duration::from_secs_f64(if small { 0.2 } else { 2.0 });
    for kind in [FastHash::Md5, FastHash::Sha256] {
        let name = format!("{kind:?}").to_lowercase();
        gpu.hash_rate(kind, 1 << 16).unwrap();
        // Every step of the hash per candidate, on both: the like-for-like pair.
        let rate = gpu.hash_rate(kind, candidates).unwrap();
        figure(&format!("{name}_gpu_hashes_per_second"), rate);
        for work in [Work::EveryStep, Work::Shortcuts] {
            let rate = passwords::hash_rate_doing(work, kind, Simd::best(), seconds);
            let work = match work {
                Work::EveryStep => "every_step",
                Work::Shortcuts => "shortcuts",
            };
            figure(&format!("{name}_cpu_{work}_hashes_per_second"), rate);
        }
    }
    println!("cpu_simd {}", Simd::best());
}
