//! The ready-made kernels: each uploads, runs one WGSL file, downloads, and times the three.

use std::time::{Duration, Instant};

use super::{Gpu, GpuBuffer, GpuError, Pod, Workgroups};
use crate::images::Image;

/// A result with the time of each step: transfers in, kernel, transfer out.
#[derive(Debug, Clone)]
pub struct Timed<T> {
    /// What the kernel computed.
    pub value: T,
    /// Host to GPU copies (wall clock).
    pub upload: Duration,
    /// The kernel itself (GPU timestamps where the adapter has them).
    pub kernel: Duration,
    /// GPU to host copy (wall clock).
    pub download: Duration,
}

impl<T> Timed<T> {
    /// Everything a caller waits for: transfers included.
    pub fn total(&self) -> Duration {
        self.upload + self.kernel + self.download
    }

    /// The same times with the value transformed.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Timed<U> {
        Timed {
            value: f(self.value),
            upload: self.upload,
            kernel: self.kernel,
            download: self.download,
        }
    }
}

/// The three matrix-product kernels of the lesson, slowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatmulKernel {
    /// One invocation per element of C; every operand comes from global memory.
    Naive,
    /// 16 x 16 tiles of A and B shared in workgroup memory.
    Tiled,
    /// 64 x 64 tiles, 4 x 4 elements of C per invocation held in registers.
    Register,
}

impl MatmulKernel {
    /// All three, for comparisons.
    pub const ALL: [MatmulKernel; 3] = [
        MatmulKernel::Naive,
        MatmulKernel::Tiled,
        MatmulKernel::Register,
    ];

    fn source(self) -> &'static str {
        match self {
            MatmulKernel::Naive => super::sources::MATMUL_NAIVE,
            MatmulKernel::Tiled => super::sources::MATMUL_TILED,
            MatmulKernel::Register => super::sources::MATMUL_REGISTER,
        }
    }

    fn workgroups(self, m: usize, n: usize) -> Workgroups {
        let per_group = if self == MatmulKernel::Register {
            64
        } else {
            16
        };
        Workgroups([
            n.div_ceil(per_group) as u32,
            m.div_ceil(per_group) as u32,
            1,
        ])
    }
}

/// Host <-> GPU copy rates, in bytes per second.
#[derive(Debug, Clone, Copy)]
pub struct Bandwidth {
    /// Host to GPU.
    pub upload: f64,
    /// GPU to host.
    pub download: f64,
    /// The size of each copy measured.
    pub bytes: usize,
}

impl Gpu {
    /// `f(x)` for every element, `f` being a WGSL expression of `x: f32`
    /// (`"x * x"`, `"sin(x) + 1.0"`).
    ///
    /// ```
    /// let gpu = parcours_gpu::gpu::gpu().unwrap();
    /// let squares = gpu.map("x * x", &[1.0, 2.0, 3.0]).unwrap();
    /// assert_eq!(squares.value, [1.0, 4.0, 9.0]);
    /// ```
    pub fn map(&self, expression: &str, input: &[f32]) -> Result<Timed<Vec<f32>>, GpuError> {
        let source = super::sources::MAP.replace("{{EXPRESSION}}", expression);
        let kernel = self.compile(&source)?;
        let started = Instant::now();
        let input_buffer = self.upload(input);
        let output = self.zeros::<f32>(input.len());
        let upload = self.settle(started)?;
        let kernel = self.dispatch(
            &kernel,
            &[&input_buffer, &output],
            Workgroups::cover(input.len(), 256),
        )?;
        self.finish(output, upload, kernel)
    }

    /// `rounds` multiply-adds per element (`x = 0.999 x + 0.001`): `2 rounds` FLOP for every
    /// 8 bytes read and written, so `rounds` sets the arithmetic intensity.
    pub fn fma_chain(&self, input: &[f32], rounds: u32) -> Result<Timed<Vec<f32>>, GpuError> {
        let kernel = self.compile(super::sources::FMA_CHAIN)?;
        let started = Instant::now();
        let input_buffer = self.upload(input);
        let output = self.zeros::<f32>(input.len());
        let rounds = self.upload(&[rounds]);
        let upload = self.settle(started)?;
        let kernel = self.dispatch(
            &kernel,
            &[&input_buffer, &output, &rounds],
            Workgroups::cover(input.len(), 256),
        )?;
        self.finish(output, upload, kernel)
    }

    /// The sum of `input`: a tree reduction in workgroup memory down to one partial sum per
    /// workgroup (at most 1024), which the host adds up in `f64`.
    ///
    /// ```
    /// let gpu = parcours_gpu::gpu::gpu().unwrap();
    /// let ones = vec![1.0f32; 100_000];
    /// assert_eq!(gpu.sum(&ones).unwrap().value, 100_000.0);
    /// ```
    pub fn sum(&self, input: &[f32]) -> Result<Timed<f32>, GpuError> {
        let kernel = self.compile(super::sources::SUM)?;
        let groups = input.len().div_ceil(256).clamp(1, 1024);
        let started = Instant::now();
        let input_buffer = self.upload(input);
        let partial = self.zeros::<f32>(groups);
        let upload = self.settle(started)?;
        let kernel = self.dispatch(&kernel, &[&input_buffer, &partial], groups as u32)?;
        let partial = self.finish(partial, upload, kernel)?;
        Ok(partial.map(|sums| sums.iter().map(|&p| f64::from(p)).sum::<f64>() as f32))
    }

    /// The matrix product `C = A B` of row-major `a` (`m x k`) and `b` (`k x n`).
    ///
    /// ```
    /// use parcours_gpu::gpu::MatmulKernel;
    /// let gpu = parcours_gpu::gpu::gpu().unwrap();
    /// let a = [1.0, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
    /// let identity = [1.0, 0.0, 0.0, 1.0];
    /// for kernel in MatmulKernel::ALL {
    ///     assert_eq!(gpu.matmul(kernel, &a, &identity, 2, 2, 2).unwrap().value, a);
    /// }
    /// ```
    pub fn matmul(
        &self,
        kernel: MatmulKernel,
        a: &[f32],
        b: &[f32],
        m: usize,
        k: usize,
        n: usize,
    ) -> Result<Timed<Vec<f32>>, GpuError> {
        self.matmul_repeated(kernel, a, b, m, k, n, 1)
    }

    /// [`Gpu::matmul`] with the kernel run `times` times in a row (for timing); the kernel
    /// time is that of one run.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_repeated(
        &self,
        kernel: MatmulKernel,
        a: &[f32],
        b: &[f32],
        m: usize,
        k: usize,
        n: usize,
        times: u32,
    ) -> Result<Timed<Vec<f32>>, GpuError> {
        assert_eq!(a.len(), m * k, "matmul: a is not m x k");
        assert_eq!(b.len(), k * n, "matmul: b is not k x n");
        let compiled = self.compile(kernel.source())?;
        let started = Instant::now();
        let (a_buffer, b_buffer) = (self.upload(a), self.upload(b));
        let c = self.zeros::<f32>(m * n);
        let dims = self.upload(&[m as u32, k as u32, n as u32, 0]);
        let upload = self.settle(started)?;
        let time = self.dispatch_repeated(
            &compiled,
            &[&a_buffer, &b_buffer, &c, &dims],
            kernel.workgroups(m, n),
            times,
        )?;
        self.finish(c, upload, time)
    }

    /// A Gaussian blur of radius `radius` (a `(2r+1)²` convolution).
    pub fn blur(&self, image: &Image, radius: u32) -> Result<Timed<Image>, GpuError> {
        let kernel = self.compile(super::sources::BLUR)?;
        let weights = crate::images::gaussian_weights(radius);
        let started = Instant::now();
        let input = self.upload(image.pixels());
        let output = self.zeros::<f32>(image.pixels().len());
        let weights = self.upload(&weights);
        let shape = self.upload(&[image.width() as u32, image.height() as u32, radius, 0]);
        let upload = self.settle(started)?;
        let time = self.dispatch(
            &kernel,
            &[&input, &output, &weights, &shape],
            image_workgroups(image),
        )?;
        let timed = self.finish(output, upload, time)?;
        Ok(timed.map(|pixels| Image::new(image.width(), image.height(), pixels)))
    }

    /// The edges of an image: the magnitude of its Sobel gradient.
    pub fn edges(&self, image: &Image) -> Result<Timed<Image>, GpuError> {
        let kernel = self.compile(super::sources::EDGES)?;
        let started = Instant::now();
        let input = self.upload(image.pixels());
        let output = self.zeros::<f32>(image.pixels().len());
        let shape = self.upload(&[image.width() as u32, image.height() as u32, 0, 0]);
        let upload = self.settle(started)?;
        let time = self.dispatch(&kernel, &[&input, &output, &shape], image_workgroups(image))?;
        let timed = self.finish(output, upload, time)?;
        Ok(timed.map(|pixels| Image::new(image.width(), image.height(), pixels)))
    }

    /// Measures host-to-GPU and GPU-to-host copies of `bytes` bytes, best of `runs`: the
    /// link between the two (PCIe, Thunderbolt for an eGPU, or memory for lavapipe).
    pub fn transfer_bandwidth(&self, bytes: usize, runs: usize) -> Result<Bandwidth, GpuError> {
        let host = vec![1u32; bytes / 4];
        let buffer = self.zeros::<u32>(host.len());
        let (mut upload, mut download) = (Duration::MAX, Duration::MAX);
        for _ in 0..runs.max(1) {
            let started = Instant::now();
            self.write(&buffer, &host);
            self.settle(started)?;
            upload = upload.min(started.elapsed());
            let started = Instant::now();
            let back = self.download(&buffer)?;
            download = download.min(started.elapsed());
            assert_eq!(back.len(), host.len());
        }
        let bytes = host.len() * 4;
        Ok(Bandwidth {
            upload: bytes as f64 / upload.as_secs_f64(),
            download: bytes as f64 / download.as_secs_f64(),
            bytes,
        })
    }

    /// Waits for queued copies; returns the time since `started`.
    fn settle(&self, started: Instant) -> Result<Duration, GpuError> {
        self.queue.submit([]);
        self.wait()?;
        Ok(started.elapsed())
    }

    fn finish<T: Pod>(
        &self,
        output: GpuBuffer<T>,
        upload: Duration,
        kernel: Duration,
    ) -> Result<Timed<Vec<T>>, GpuError> {
        let started = Instant::now();
        let value = self.download(&output)?;
        Ok(Timed {
            value,
            upload,
            kernel,
            download: started.elapsed(),
        })
    }
}

fn image_workgroups(image: &Image) -> Workgroups {
    Workgroups([
        image.width().div_ceil(16) as u32,
        image.height().div_ceil(16) as u32,
        1,
    ])
}
