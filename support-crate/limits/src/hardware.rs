//! What this machine is made of: processor, caches, SIMD units, NUMA nodes, memory, disks.
//!
//! System facts come from the `sysinfo` crate, caches and NUMA nodes from Linux's `/sys`, SIMD
//! features from the processor itself (`is_x86_feature_detected!`). Where a fact is not
//! available (another system, a container hiding it), it says so rather than guess.
//!
//! ```
//! let machine = parcours_limits::hardware::Machine::detect();
//! assert!(machine.logical_cores >= 1);
//! // Linux always tells the memory size; other systems may not.
//! #[cfg(target_os = "linux")]
//! assert!(machine.memory_bytes.is_some_and(|bytes| bytes > 0));
//! println!("{}", machine.to_table());
//! ```

use std::fs;
use std::path::Path;

use sysinfo::{Disks, System};

use parcours::display::{Table, emit, format_bytes};

/// One cache of the first core, as Linux describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cache {
    /// 1, 2, 3...
    pub level: u32,
    /// `Data`, `Instruction` or `Unified`.
    pub kind: String,
    /// Size in bytes.
    pub bytes: u64,
    /// How many logical cores share it.
    pub shared_by: usize,
}

/// A mounted disk.
#[derive(Clone, Debug, PartialEq)]
pub struct DiskInfo {
    /// Where it is mounted.
    pub mount_point: String,
    /// The file system (ext4, xfs, overlay...).
    pub file_system: String,
    /// `SSD`, `HDD` or `Unknown`.
    pub kind: String,
    /// Total size in bytes.
    pub total_bytes: u64,
    /// Free space in bytes.
    pub available_bytes: u64,
}

/// The machine this code runs on.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    /// The processor's name, as it reports it.
    pub cpu_model: String,
    /// Physical cores, when the system says.
    pub physical_cores: Option<usize>,
    /// Hardware threads the operating system lets this process use.
    pub logical_cores: usize,
    /// The caches of the first core, smallest level first.
    pub caches: Vec<Cache>,
    /// SIMD instruction sets the processor offers.
    pub simd: Vec<&'static str>,
    /// NUMA nodes (1 on most laptops), when the system says.
    pub numa_nodes: Option<usize>,
    /// Main memory in bytes, when the system says.
    pub memory_bytes: Option<u64>,
    /// Mounted disks, pseudo file systems left out.
    pub disks: Vec<DiskInfo>,
}

impl Machine {
    /// Looks at the machine.
    pub fn detect() -> Self {
        let system = System::new().ok().map(|mut system| {
            system.refresh_cpu_all();
            system.refresh_memory();
            system
        });
        let cpu_model = system
            .as_ref()
            .and_then(|system| {
                system
                    .cpus()
                    .first()
                    .map(|cpu| cpu.brand().trim().to_string())
            })
            .filter(|brand| !brand.is_empty())
            .unwrap_or_else(|| "(not reported)".to_string());
        Machine {
            cpu_model,
            physical_cores: System::physical_core_count().ok(),
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            caches: caches(Path::new("/sys/devices/system/cpu/cpu0/cache")),
            simd: simd_features(),
            numa_nodes: numa_nodes(Path::new("/sys/devices/system/node")),
            memory_bytes: system.as_ref().map(|system| system.total_memory()),
            disks: disks(),
        }
    }

    /// The size of the largest cache, in bytes (0 when unknown): a working set well beyond it
    /// lives in main memory.
    pub fn last_level_cache_bytes(&self) -> u64 {
        self.caches.iter().map(|c| c.bytes).max().unwrap_or(0)
    }

    /// Everything in one table.
    pub fn to_table(&self) -> Table {
        let unknown = || "(not reported)".to_string();
        let mut table = Table::new(["", ""]).title("This machine");
        table.push_row(["processor", &self.cpu_model]);
        table.push_row([
            "cores".to_string(),
            format!(
                "{} physical, {} logical (hardware threads)",
                self.physical_cores.map_or_else(unknown, |n| n.to_string()),
                self.logical_cores
            ),
        ]);
        for cache in &self.caches {
            table.push_row([
                format!("L{} {} cache", cache.level, cache.kind.to_lowercase()),
                format!(
                    "{}, shared by {} logical core{}",
                    format_bytes(cache.bytes),
                    cache.shared_by,
                    if cache.shared_by == 1 { "" } else { "s" }
                ),
            ]);
        }
        table.push_row(["SIMD".to_string(), self.simd.join(", ")]);
        table.push_row([
            "NUMA nodes".to_string(),
            self.numa_nodes.map_or_else(unknown, |n| n.to_string()),
        ]);
        table.push_row([
            "memory".to_string(),
            self.memory_bytes.map_or_else(unknown, format_bytes),
        ]);
        for disk in &self.disks {
            table.push_row([
                format!("disk {}", disk.mount_point),
                format!(
                    "{} {}, {} free of {}",
                    disk.kind,
                    disk.file_system,
                    format_bytes(disk.available_bytes),
                    format_bytes(disk.total_bytes)
                ),
            ]);
        }
        table
    }

    /// Shows the table.
    pub fn evcxr_display(&self) {
        emit("text/html", &self.to_table().to_html());
    }
}

/// Caches as Linux lists them in `dir` (`index0`, `index1`, ...).
fn caches(dir: &Path) -> Vec<Cache> {
    let read = |path: &Path| fs::read_to_string(path).ok().map(|s| s.trim().to_string());
    let mut caches: Vec<Cache> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("index"))
        .filter_map(|entry| {
            let path = entry.path();
            Some(Cache {
                level: read(&path.join("level"))?.parse().ok()?,
                kind: read(&path.join("type"))?,
                bytes: parse_size(&read(&path.join("size"))?)?,
                shared_by: read(&path.join("shared_cpu_list"))
                    .map_or(1, |list| count_cpu_list(&list)),
            })
        })
        .collect();
    caches.sort_by(|a, b| (a.level, &a.kind).cmp(&(b.level, &b.kind)));
    caches
}

/// `"32K"`, `"1024K"`, `"32M"` → bytes.
fn parse_size(text: &str) -> Option<u64> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let factor = match unit.trim() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    Some(number.parse::<u64>().ok()? * factor)
}

/// `"0-3,8,10-11"` → 7.
fn count_cpu_list(list: &str) -> usize {
    list.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('-') {
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => usize::from(part.parse::<usize>().is_ok()),
        })
        .sum()
}

fn numa_nodes(dir: &Path) -> Option<usize> {
    let count = fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            name.strip_prefix("node")
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .count();
    (count > 0).then_some(count)
}

/// The SIMD instruction sets of this processor, oldest first.
pub fn simd_features() -> Vec<&'static str> {
    let mut found = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($feature:tt),*) => {$(
                if std::arch::is_x86_feature_detected!($feature) {
                    found.push($feature);
                }
            )*};
        }
        probe!("sse2", "sse4.2", "avx", "avx2", "fma", "avx512f");
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            found.push("neon");
        }
        if std::arch::is_aarch64_feature_detected!("sve") {
            found.push("sve");
        }
    }
    found
}

fn disks() -> Vec<DiskInfo> {
    let pseudo = ["overlay", "tmpfs", "devtmpfs", "squashfs", "proc", "sysfs"];
    let Ok(list) = Disks::new_with_refreshed_list() else {
        return Vec::new();
    };
    let mut disks: Vec<DiskInfo> = list
        .iter()
        .map(|disk| DiskInfo {
            mount_point: disk.mount_point().display().to_string(),
            file_system: disk.file_system().to_string_lossy().to_string(),
            kind: disk.kind().to_string(),
            total_bytes: disk.total_space(),
            available_bytes: disk.available_space(),
        })
        .filter(|disk| !pseudo.contains(&disk.file_system.as_str()) && disk.total_bytes > 0)
        .collect();
    disks.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    disks.dedup_by(|a, b| a.mount_point == b.mount_point);
    disks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_cpu_lists_parse() {
        assert_eq!(parse_size("32K"), Some(32 * 1024));
        assert_eq!(parse_size("16M"), Some(16 << 20));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("3X"), None);
        assert_eq!(count_cpu_list("0-3,8,10-11"), 7);
        assert_eq!(count_cpu_list("5"), 1);
    }

    #[test]
    fn caches_are_read_from_sysfs_layout() {
        let dir = std::env::temp_dir().join(format!("parcours-cache-{}", std::process::id()));
        for (index, level, kind, size, shared) in [
            ("index0", "1", "Data", "48K", "0-1"),
            ("index1", "2", "Unified", "1024K", "0"),
        ] {
            let path = dir.join(index);
            fs::create_dir_all(&path).unwrap();
            for (file, text) in [
                ("level", level),
                ("type", kind),
                ("size", size),
                ("shared_cpu_list", shared),
            ] {
                fs::write(path.join(file), text).unwrap();
            }
        }
        let found = caches(&dir);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].level, found[0].bytes, found[0].shared_by),
            (1, 48 * 1024, 2)
        );
        assert_eq!(found[1].kind, "Unified");
    }

    #[test]
    fn this_machine_has_at_least_basic_simd() {
        #[cfg(target_arch = "x86_64")]
        assert!(simd_features().contains(&"sse2"));
    }
}
