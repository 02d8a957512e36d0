//! GPU computing with wgpu: one context per kernel, kernels written in WGSL, timed.
//!
//! [`gpu()`] opens the best adapter once — a real GPU when there is one, Mesa's software Vulkan
//! driver (lavapipe) when there is none — and every later cell reuses it (this crate is a
//! `dylib`, so its statics live once per kernel). The same code runs on both: only the figures
//! change, which is the lesson of Module 3.
//!
//! ```
//! use parcours_gpu::gpu::{self, Workgroups};
//!
//! let gpu = gpu::gpu().expect("a Vulkan driver");
//! let kernel = gpu.compile("
//!     @group(0) @binding(0) var<storage, read_write> data: array<f32>;
//!     @compute @workgroup_size(64)
//!     fn main(@builtin(global_invocation_id) id: vec3<u32>) {
//!         if id.x < arrayLength(&data) { data[id.x] = 2.0 * data[id.x]; }
//!     }").unwrap();
//! let data = gpu.upload(&[1.0f32, 2.0, 3.0]);
//! gpu.dispatch(&kernel, &[&data], Workgroups::cover(3, 64)).unwrap();
//! assert_eq!(gpu.download(&data).unwrap(), [2.0, 4.0, 6.0]);
//! ```
//!
//! The ready-made kernels ([`Gpu::map`], [`Gpu::sum`], [`Gpu::matmul`], [`Gpu::blur`],
//! [`Gpu::edges`], [`Gpu::crack`] ...) are WGSL files in `src/gpu/kernels/`; each has a
//! rayon reference in [`cpu`] that the tests compare it with.
//!
//! Errors are values, never panics: a WGSL mistake comes back as [`GpuError::Shader`] with the
//! compiler's message, and a machine without Vulkan gets [`GpuError::NoAdapter`], which names
//! the packages to install.

pub mod cpu;
mod crack;
mod ops;

pub use ops::{Bandwidth, MatmulKernel, Timed};

/// The WGSL sources of the ready-made kernels (`src/gpu/kernels/`): to read in a notebook, or to
/// run with other bindings through [`Gpu::compile`] and [`Gpu::dispatch`].
pub mod sources {
    /// `kernels/map.wgsl`
    pub const MAP: &str = include_str!("kernels/map.wgsl");
    /// `kernels/fma_chain.wgsl`
    pub const FMA_CHAIN: &str = include_str!("kernels/fma_chain.wgsl");
    /// `kernels/sum.wgsl`
    pub const SUM: &str = include_str!("kernels/sum.wgsl");
    /// `kernels/matmul_naive.wgsl`
    pub const MATMUL_NAIVE: &str = include_str!("kernels/matmul_naive.wgsl");
    /// `kernels/matmul_tiled.wgsl`
    pub const MATMUL_TILED: &str = include_str!("kernels/matmul_tiled.wgsl");
    /// `kernels/matmul_register.wgsl`
    pub const MATMUL_REGISTER: &str = include_str!("kernels/matmul_register.wgsl");
    /// `kernels/blur.wgsl`
    pub const BLUR: &str = include_str!("kernels/blur.wgsl");
    /// `kernels/edges.wgsl`
    pub const EDGES: &str = include_str!("kernels/edges.wgsl");
    /// `kernels/md5_crack.wgsl`
    pub const MD5_CRACK: &str = include_str!("kernels/md5_crack.wgsl");
    /// `kernels/sha256_crack.wgsl`
    pub const SHA256_CRACK: &str = include_str!("kernels/sha256_crack.wgsl");
}

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use bytemuck::{self, Pod};
pub use wgpu;
use wgpu::util::DeviceExt;

use parcours::display::Table;

/// Names an adapter to use instead of the best one (a part of its name, case-insensitive):
/// `PARCOURS_GPU=llvmpipe` runs on lavapipe even where a real GPU exists.
pub const ADAPTER_VARIABLE: &str = "PARCOURS_GPU";

/// What can go wrong on the GPU, with what to do about it.
///
/// Its `Debug` form is its message, so that `.unwrap()` in a notebook cell shows what to do.
#[derive(Clone)]
pub enum GpuError {
    /// No Vulkan adapter at all: no driver, or no loader.
    NoAdapter(String),
    /// The adapter refused to open a device.
    Device(String),
    /// The WGSL did not compile or did not validate; the compiler's message.
    Shader(String),
    /// A dispatch was refused (wrong bindings, too many workgroups...).
    Dispatch(String),
    /// Reading a buffer back failed.
    Readback(String),
    /// A ranged search ([`Gpu::crack_range`]) was asked for candidates outside the keyspace.
    Range(crate::passwords::RangeError),
}

impl From<crate::passwords::RangeError> for GpuError {
    fn from(error: crate::passwords::RangeError) -> Self {
        GpuError::Range(error)
    }
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuError::NoAdapter(why) => write!(
                f,
                "no GPU adapter: {why}. wgpu needs a Vulkan driver. Without a GPU, install Mesa's \
                 software driver: `sudo apt-get install libvulkan1 mesa-vulkan-drivers` (Debian, \
                 Ubuntu), `sudo dnf install vulkan-loader mesa-vulkan-drivers` (Fedora); \
                 `./course setup` does it when run as root. Check with `vulkaninfo --summary`."
            ),
            GpuError::Device(why) => write!(f, "the GPU adapter refused to open a device: {why}"),
            GpuError::Shader(why) => write!(f, "the WGSL kernel does not compile:\n{why}"),
            GpuError::Dispatch(why) => write!(f, "the GPU refused the dispatch: {why}"),
            GpuError::Readback(why) => write!(f, "reading a GPU buffer back failed: {why}"),
            GpuError::Range(why) => write!(f, "nothing searched: {why}"),
        }
    }
}

impl fmt::Debug for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for GpuError {}

/// An open GPU: adapter, device and queue, and the kernels compiled so far.
pub struct Gpu {
    adapter: wgpu::Adapter,
    device: wgpu::Device,
    queue: wgpu::Queue,
    timestamps: bool,
    kernels: Mutex<HashMap<String, Kernel>>,
}

static SHARED: Mutex<Option<&'static Gpu>> = Mutex::new(None);

/// The kernel's GPU, opened on first use and shared by every later cell.
///
/// A failure is not remembered: install the driver, call again.
pub fn gpu() -> Result<&'static Gpu, GpuError> {
    let mut shared = SHARED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(gpu) = *shared {
        return Ok(gpu);
    }
    let gpu: &'static Gpu = Box::leak(Box::new(Gpu::open()?));
    *shared = Some(gpu);
    Ok(gpu)
}

/// Compute dispatches that have run to completion on the adapter in this process, through
/// [`Gpu::dispatch`] and every ready-made kernel. An exercise's check reads it before and
/// after calling the student's code, to tell a GPU answer from a CPU one.
///
/// ```
/// let gpu = parcours_gpu::gpu::gpu().expect("a Vulkan driver");
/// let before = parcours_gpu::gpu::dispatches();
/// gpu.map("2.0 * x", &[1.0, 2.0]).unwrap();
/// assert!(parcours_gpu::gpu::dispatches() > before);
/// ```
pub fn dispatches() -> u64 {
    DISPATCHES.load(Ordering::Relaxed)
}

static DISPATCHES: AtomicU64 = AtomicU64::new(0);

/// Bytes copied between the host and the GPU since the kernel started, both ways
/// ([`Gpu::upload`], [`Gpu::write`], [`Gpu::download`]): a check can tell an answer that
/// keeps its data on the GPU from one that sends it back and forth.
///
/// ```
/// let gpu = parcours_gpu::gpu::gpu().expect("a Vulkan driver");
/// let before = parcours_gpu::gpu::transferred();
/// let buffer = gpu.upload(&[1.0f32; 256]);
/// gpu.download(&buffer).unwrap();
/// // At least: doctests running beside this one may move data too.
/// assert!(parcours_gpu::gpu::transferred() - before >= 2 * 256 * 4);
/// ```
pub fn transferred() -> u64 {
    TRANSFERRED.load(Ordering::Relaxed)
}

static TRANSFERRED: AtomicU64 = AtomicU64::new(0);

/// Every Vulkan adapter of this machine, best first (see [`Gpu::open`] for the order).
pub fn adapters() -> Vec<wgpu::AdapterInfo> {
    let mut all: Vec<_> = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::VULKAN))
        .iter()
        .map(|adapter| adapter.get_info())
        .collect();
    all.sort_by_key(|info| rank(info.device_type));
    all
}

fn instance() -> wgpu::Instance {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    descriptor.backends = wgpu::Backends::VULKAN;
    wgpu::Instance::new(descriptor)
}

/// Real GPUs before virtual ones, software last.
fn rank(kind: wgpu::DeviceType) -> u8 {
    match kind {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

impl Gpu {
    /// Opens the best adapter: a discrete GPU, then an integrated one, then a virtual one,
    /// then software (lavapipe); or the one named by `PARCOURS_GPU`. Asks for the adapter's
    /// own limits (big buffers) and for timestamp queries where it has them.
    ///
    /// Most code wants the shared [`gpu()`] instead: each `Gpu` holds its own device.
    pub fn open() -> Result<Gpu, GpuError> {
        let instance = instance();
        let mut candidates =
            pollster::block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN));
        if candidates.is_empty() {
            let loader = if vulkan_loader_present() {
                "the Vulkan loader is installed but lists no driver"
            } else {
                "the Vulkan loader (libvulkan.so.1) is not installed"
            };
            return Err(GpuError::NoAdapter(loader.into()));
        }
        candidates.sort_by_key(|adapter| rank(adapter.get_info().device_type));
        let adapter = match std::env::var(ADAPTER_VARIABLE) {
            Ok(wanted) if !wanted.is_empty() => {
                let names: Vec<String> = candidates.iter().map(|a| a.get_info().name).collect();
                let position = names
                    .iter()
                    .position(|name| name.to_lowercase().contains(&wanted.to_lowercase()))
                    .ok_or_else(|| {
                        GpuError::NoAdapter(format!(
                            "{ADAPTER_VARIABLE}={wanted} matches none of the adapters {names:?}"
                        ))
                    })?;
                candidates.swap_remove(position)
            }
            _ => candidates.swap_remove(0),
        };
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let required_features = if timestamps {
            wgpu::Features::TIMESTAMP_QUERY
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("parcours"),
            required_features,
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|error| GpuError::Device(error.to_string()))?;
        // Errors are caught in scopes around each call; one that escapes is printed, not
        // turned into a panic that would end the cell.
        device.on_uncaptured_error(Arc::new(|error| eprintln!("GPU error: {error}")));
        Ok(Gpu {
            adapter,
            device,
            queue,
            timestamps,
            kernels: Mutex::new(HashMap::new()),
        })
    }

    /// The adapter's name, driver and type.
    pub fn info(&self) -> wgpu::AdapterInfo {
        self.adapter.get_info()
    }

    /// The adapter's name ("NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6, 256 bits)").
    pub fn name(&self) -> String {
        self.info().name
    }

    /// Whether this is a software driver running on the CPU (lavapipe): figures are then the
    /// CPU's, seen through the GPU programming model.
    pub fn is_software(&self) -> bool {
        self.info().device_type == wgpu::DeviceType::Cpu
    }

    /// Whether kernel times come from the GPU's own clock (timestamp queries) rather than
    /// the wall clock around a dispatch.
    pub fn has_timestamps(&self) -> bool {
        self.timestamps
    }

    /// The limits of the opened device (largest buffer, workgroup sizes...).
    pub fn limits(&self) -> wgpu::Limits {
        self.device.limits()
    }

    /// The underlying wgpu device and queue, for what this module does not cover.
    pub fn raw(&self) -> (&wgpu::Device, &wgpu::Queue) {
        (&self.device, &self.queue)
    }

    /// A table of what was picked and what it can do.
    pub fn describe(&self) -> Table {
        let info = self.info();
        let limits = self.limits();
        let kind = match info.device_type {
            wgpu::DeviceType::Cpu => "software (runs on the CPU)".to_string(),
            other => format!("{other:?}"),
        };
        Table::new(["property", "value"])
            .title("The GPU this kernel uses")
            .row(["adapter", &info.name])
            .row(["type", &kind])
            .row(["driver", &format!("{} {}", info.driver, info.driver_info)])
            .row(["backend", &format!("{:?}", info.backend)])
            .row(["subgroup (warp) size", &subgroup_sizes(&info)])
            .row([
                "max workgroup size",
                &limits.max_compute_invocations_per_workgroup.to_string(),
            ])
            .row([
                "workgroup memory",
                &parcours::display::format_bytes(limits.max_compute_workgroup_storage_size.into()),
            ])
            .row([
                "largest buffer",
                &parcours::display::format_bytes(limits.max_buffer_size),
            ])
            .row([
                "kernel timing",
                if self.timestamps {
                    "GPU timestamps"
                } else {
                    "wall clock"
                },
            ])
    }

    /// Compiles a WGSL compute kernel whose entry point is `main`; its buffers are
    /// `@group(0) @binding(0..)`, passed to [`Gpu::dispatch`] in that order.
    ///
    /// Compiled kernels are kept: compiling the same source again is free.
    pub fn compile(&self, wgsl: &str) -> Result<Kernel, GpuError> {
        if let Some(kernel) = self.kernels.lock().unwrap().get(wgsl) {
            return Ok(kernel.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: None,
                source: wgpu::ShaderSource::Wgsl(wgsl.into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: None,
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Shader(error.to_string()));
        }
        let kernel = Kernel { pipeline };
        self.kernels
            .lock()
            .unwrap()
            .insert(wgsl.to_string(), kernel.clone());
        Ok(kernel)
    }

    /// Copies `data` into a new GPU buffer.
    pub fn upload<T: Pod>(&self, data: &[T]) -> GpuBuffer<T> {
        // wgpu refuses empty bindings: keep at least 4 bytes.
        let bytes: &[u8] = bytemuck::cast_slice(data);
        TRANSFERRED.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let padded;
        let contents = if bytes.len() < 4 {
            padded = [bytes, &[0u8; 4][bytes.len()..]].concat();
            &padded[..]
        } else {
            bytes
        };
        let buffer = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents,
                usage: STORAGE_USAGE,
            });
        GpuBuffer {
            buffer,
            len: data.len(),
            element: PhantomData,
        }
    }

    /// A new GPU buffer of `len` zeroed elements.
    pub fn zeros<T: Pod>(&self, len: usize) -> GpuBuffer<T> {
        let size = (len * size_of::<T>()).max(4) as u64;
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: size.next_multiple_of(4),
            usage: STORAGE_USAGE,
            mapped_at_creation: false,
        });
        GpuBuffer {
            buffer,
            len,
            element: PhantomData,
        }
    }

    /// Overwrites a buffer with `data` (same length).
    pub fn write<T: Pod>(&self, buffer: &GpuBuffer<T>, data: &[T]) {
        assert_eq!(
            buffer.len,
            data.len(),
            "write: the buffer and the data differ in length"
        );
        TRANSFERRED.fetch_add(size_of_val(data) as u64, Ordering::Relaxed);
        self.queue
            .write_buffer(&buffer.buffer, 0, bytemuck::cast_slice(data));
    }

    /// Copies a buffer back to the host, waiting for the work that writes it.
    pub fn download<T: Pod>(&self, buffer: &GpuBuffer<T>) -> Result<Vec<T>, GpuError> {
        let bytes = (buffer.len * size_of::<T>()) as u64;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        TRANSFERRED.fetch_add(bytes, Ordering::Relaxed);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes.next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&buffer.buffer, 0, &staging, 0, bytes.next_multiple_of(4));
        self.queue.submit([encoder.finish()]);
        let bytes = self.read_mapped(&staging)?;
        Ok(bytemuck::pod_collect_to_vec(
            &bytes[..buffer.len * size_of::<T>()],
        ))
    }

    fn read_mapped(&self, staging: &wgpu::Buffer) -> Result<Vec<u8>, GpuError> {
        let (sender, receiver) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |result| {
            let _ = sender.send(result);
        });
        self.wait()?;
        receiver
            .recv()
            .map_err(|_| GpuError::Readback("the map callback never ran".into()))?
            .map_err(|error| GpuError::Readback(error.to_string()))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let bytes = view.to_vec();
        drop(view);
        staging.unmap();
        Ok(bytes)
    }

    fn wait(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|error| GpuError::Readback(error.to_string()))
    }

    /// Runs `kernel` over `workgroups` with `buffers` bound at `@binding(0..)`, waits for it,
    /// and says how long it took on the GPU.
    pub fn dispatch(
        &self,
        kernel: &Kernel,
        buffers: &[&dyn Binding],
        workgroups: impl Into<Workgroups>,
    ) -> Result<Duration, GpuError> {
        self.dispatch_repeated(kernel, buffers, workgroups, 1)
    }

    /// Like [`Gpu::dispatch`], `times` dispatches in one pass; returns the time of one.
    /// Repeating amortises the fixed cost of a submission when timing with the wall clock.
    pub fn dispatch_repeated(
        &self,
        kernel: &Kernel,
        buffers: &[&dyn Binding],
        workgroups: impl Into<Workgroups>,
        times: u32,
    ) -> Result<Duration, GpuError> {
        let workgroups = workgroups.into();
        let max = self.limits().max_compute_workgroups_per_dimension;
        if workgroups.0.iter().any(|&count| count > max) {
            return Err(GpuError::Dispatch(format!(
                "{:?} workgroups: at most {max} per dimension; spread them over y (see \
                 Workgroups::cover)",
                workgroups.0
            )));
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let layout = kernel.pipeline.get_bind_group_layout(0);
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(index, buffer)| wgpu::BindGroupEntry {
                binding: index as u32,
                resource: buffer.raw().as_entire_binding(),
            })
            .collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        });
        let queries = self.timestamps.then(|| {
            self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: None,
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            })
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: queries.as_ref().map(|query_set| {
                    wgpu::ComputePassTimestampWrites {
                        query_set,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    }
                }),
            });
            pass.set_pipeline(&kernel.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            let [x, y, z] = workgroups.0;
            for _ in 0..times.max(1) {
                pass.dispatch_workgroups(x, y, z);
            }
        }
        let resolved = queries.as_ref().map(|query_set| {
            let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            encoder.resolve_query_set(query_set, 0..2, &resolve, 0);
            encoder.copy_buffer_to_buffer(&resolve, 0, &staging, 0, 16);
            staging
        });
        let started = Instant::now();
        self.queue.submit([encoder.finish()]);
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Dispatch(error.to_string()));
        }
        self.wait()?;
        DISPATCHES.fetch_add(u64::from(times.max(1)), Ordering::Relaxed);
        let wall = started.elapsed();
        let elapsed = match resolved {
            Some(staging) => {
                let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&self.read_mapped(&staging)?);
                let period = f64::from(self.queue.get_timestamp_period());
                let nanos = ticks[1].saturating_sub(ticks[0]) as f64 * period;
                // Some drivers report zero for passes they cannot time: fall back.
                if nanos > 0.0 {
                    Duration::from_nanos(nanos as u64)
                } else {
                    wall
                }
            }
            None => wall,
        };
        Ok(elapsed / times.max(1))
    }
}

fn subgroup_sizes(info: &wgpu::AdapterInfo) -> String {
    match (info.subgroup_min_size, info.subgroup_max_size) {
        (0, 0) => "unknown".into(),
        (min, max) if min == max => min.to_string(),
        (min, max) => format!("{min}–{max}"),
    }
}

fn vulkan_loader_present() -> bool {
    [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ]
    .iter()
    .any(|dir| std::path::Path::new(dir).join("libvulkan.so.1").exists())
}

const STORAGE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// A compiled compute kernel (cheap to clone).
#[derive(Clone)]
pub struct Kernel {
    pipeline: wgpu::ComputePipeline,
}

/// A typed buffer in GPU memory.
pub struct GpuBuffer<T> {
    buffer: wgpu::Buffer,
    len: usize,
    element: PhantomData<T>,
}

impl<T> GpuBuffer<T> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Anything [`Gpu::dispatch`] can bind: a [`GpuBuffer`] of any element type.
pub trait Binding {
    /// The wgpu buffer behind it.
    fn raw(&self) -> &wgpu::Buffer;
}

impl<T> Binding for GpuBuffer<T> {
    fn raw(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

/// How many workgroups a dispatch launches in x, y and z.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workgroups(pub [u32; 3]);

impl Workgroups {
    /// Enough workgroups of `size` invocations for `items` items, spread over y when x would
    /// exceed the 65 535 that every adapter accepts. A kernel then numbers its item
    /// `id.x + id.y * num_workgroups.x * size`.
    pub fn cover(items: usize, size: u32) -> Workgroups {
        let groups = items.div_ceil(size as usize).max(1);
        if groups <= 65_535 {
            Workgroups([groups as u32, 1, 1])
        } else {
            let y = groups.div_ceil(65_535);
            Workgroups([groups.div_ceil(y) as u32, y as u32, 1])
        }
    }
}

impl From<u32> for Workgroups {
    fn from(x: u32) -> Self {
        Workgroups([x, 1, 1])
    }
}

impl From<(u32, u32)> for Workgroups {
    fn from((x, y): (u32, u32)) -> Self {
        Workgroups([x, y, 1])
    }
}

impl From<[u32; 3]> for Workgroups {
    fn from(xyz: [u32; 3]) -> Self {
        Workgroups(xyz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_spreads_large_dispatches_over_y() {
        assert_eq!(Workgroups::cover(1000, 256), Workgroups([4, 1, 1]));
        let Workgroups([x, y, _]) = Workgroups::cover(100_000_000, 256);
        assert!(x <= 65_535 && (x as usize * y as usize * 256) >= 100_000_000);
    }

    #[test]
    fn a_shader_error_says_what_is_wrong() {
        let gpu = gpu().unwrap();
        let error = gpu.compile("@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }");
        let message = error.err().expect("a type error").to_string();
        assert!(message.contains("does not compile"), "{message}");
    }

    #[test]
    fn too_many_workgroups_is_an_error_not_a_crash() {
        let gpu = gpu().unwrap();
        let kernel = gpu
            .compile(
                "@group(0) @binding(0) var<storage, read_write> d: array<u32>;
                 @compute @workgroup_size(1) fn main() { d[0] = 1u; }",
            )
            .unwrap();
        let buffer = gpu.zeros::<u32>(1);
        let error = gpu
            .dispatch(&kernel, &[&buffer], [1_000_000, 1, 1])
            .unwrap_err();
        assert!(error.to_string().contains("per dimension"), "{error}");
        // Still usable afterwards.
        gpu.dispatch(&kernel, &[&buffer], 1).unwrap();
        assert_eq!(gpu.download(&buffer).unwrap(), [1]);
    }

    #[test]
    fn wrong_bindings_are_an_error_not_a_crash() {
        let gpu = gpu().unwrap();
        let kernel = gpu
            .compile(
                "@group(0) @binding(0) var<storage, read> a: array<f32>;
                 @group(0) @binding(1) var<storage, read_write> b: array<f32>;
                 @compute @workgroup_size(1) fn main() { b[0] = a[0]; }",
            )
            .unwrap();
        let only_one = gpu.zeros::<f32>(4);
        assert!(gpu.dispatch(&kernel, &[&only_one], 1).is_err());
    }
}
