//! A counter shared by processes through a file: `parcours-shared-counter FILE TIMES HOW` adds
//! 1 to the little-endian `u64` at the start of FILE, TIMES times, in one of three ways (HOW):
//! - `unlocked`: read the number, write it back plus one; processes that interleave lose updates;
//! - `file-lock`: the same between `File::lock` and `File::unlock` (an exclusive `flock`);
//! - `shared-memory`: map the file into memory (`mmap`, `MAP_SHARED`) and `fetch_add` on an
//!   atomic in the mapping: every process sees the same page.
//!
//! Notebook 24 starts several at once. Exits 2 with a message on bad arguments or I/O errors.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, times, how] = args.as_slice() else {
        fail("usage: parcours-shared-counter FILE TIMES unlocked|file-lock|shared-memory")
    };
    let times: u64 = times
        .parse()
        .unwrap_or_else(|_| fail(&format!("TIMES must be a number, not {times:?}")));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|error| fail(&format!("cannot open {path}: {error}")));
    let result = match how.as_str() {
        "unlocked" => (0..times).try_for_each(|_| add_one(&mut file)),
        "file-lock" => (0..times).try_for_each(|_| {
            file.lock()?;
            let added = add_one(&mut file);
            file.unlock()?;
            added
        }),
        "shared-memory" => add_in_shared_memory(&file, times),
        other => fail(&format!(
            "HOW is unlocked, file-lock or shared-memory, not {other:?}"
        )),
    };
    if let Err(error) = result {
        fail(&format!("{path}: {error}"));
    }
}

/// Reads the counter, writes it back plus one: two system calls another process can come between.
fn add_one(file: &mut File) -> std::io::Result<()> {
    let mut bytes = [0u8; 8];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut bytes)?;
    let next = u64::from_le_bytes(bytes) + 1;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&next.to_le_bytes())
}

fn add_in_shared_memory(file: &File, times: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let length = 4096;
    if file.metadata()?.len() < length as u64 {
        file.set_len(length as u64)?;
    }
    // SAFETY: a shared mapping of a file we hold open, of its first page; unmapped below.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            length,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if address == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the page is mapped, aligned, and only ever accessed atomically by the programs
    // that share it. On little-endian machines its bytes are the file's little-endian u64.
    let counter = unsafe { &*(address as *const AtomicU64) };
    for _ in 0..times {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    // SAFETY: the mapping made above, no longer referenced.
    unsafe { libc::munmap(address, length) };
    Ok(())
}

fn fail(message: &str) -> ! {
    eprintln!("parcours-shared-counter: {message}");
    std::process::exit(2)
}
