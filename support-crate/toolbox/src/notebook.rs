//! How notebooks run: the kernel's start-up hook [`init`], the per-cell guard
//! [`cell_begins`], and the [`small`] switch.
//!
//! The kernel (evcxr) runs each cell inside `catch_unwind`: a panic ends the cell, the kernel
//! stays up, and the variables of earlier cells are kept. But the kernel reports that cell to
//! Jupyter as a *success*, and the default panic message goes to stderr, where it can arrive
//! after the cell has finished and be shown under the next one, or not at all. So [`init`]
//! installs a panic hook that reports each panic as a *display output* of the cell: evcxr
//! reads display blocks from the cell's process in order, before it declares the cell done, so
//! the report always belongs to the cell that panicked. The output carries two MIME types:
//! `text/plain`, a clear line starting with [`PANIC_MARKER`] for the reader, and
//! [`PANIC_MIME`], which the course's notebook runner looks for. A panic on another thread
//! than the cell's also prints that line on stdout, since the cell may still show a value.
//!
//! A cell may replace the panic hook (`std::panic::set_hook`) and never restore it. The
//! notebook runner starts each cell with [`cell_begins`], which puts the course's hook back.

use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The start of the line printed for a panic.
pub const PANIC_MARKER: &str = "✘ This cell panicked";

/// The MIME type of the display output that reports a panic to the notebook runner.
pub const PANIC_MIME: &str = "application/vnd.parcours.panic+json";

/// The address of the installed course hook, to tell it from a hook a cell put in its place.
static COURSE_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Sets up the current kernel for the course: installs the panic hook. Called by the
/// course kernel at start-up; calling it again does nothing unless a cell replaced the hook.
///
/// ```
/// parcours::notebook::init();
/// let caught = std::panic::catch_unwind(|| panic!("boom"));
/// assert!(caught.is_err());
/// ```
pub fn init() {
    cell_begins();
}

/// Puts the course's panic hook back if a cell replaced it; the notebook runner calls it at
/// the start of every cell. Returns whether the hook had to be put back.
///
/// ```
/// parcours::notebook::init();
/// assert!(!parcours::notebook::cell_begins());
/// std::panic::set_hook(Box::new(|_| {}));
/// assert!(parcours::notebook::cell_begins());
/// assert!(!parcours::notebook::cell_begins());
/// ```
pub fn cell_begins() -> bool {
    let current = std::panic::take_hook();
    if identity_of(&*current) == Some(COURSE_HOOK.load(Ordering::SeqCst)) {
        std::panic::set_hook(current);
        return false;
    }
    // The hook captures a marker, so that its box has an address of its own (a closure that
    // captures nothing is zero-sized, and so are most hooks a cell installs).
    let marker = [0u8; MARKER_SIZE];
    let hook: Box<dyn Fn(&PanicHookInfo<'_>) + Send + Sync> = Box::new(move |info| {
        std::hint::black_box(&marker);
        report_panic(info)
    });
    COURSE_HOOK.store(identity_of(&*hook).unwrap_or(0), Ordering::SeqCst);
    std::panic::set_hook(hook);
    drop(current);
    true
}

const MARKER_SIZE: usize = 23;

/// The address of a hook the size of the course's, or None (so that a hook of another size
/// later allocated where the course's was is not taken for it).
fn identity_of(hook: &(dyn Fn(&PanicHookInfo<'_>) + Send + Sync)) -> Option<usize> {
    (std::mem::size_of_val(hook) == MARKER_SIZE).then_some(hook as *const _ as *const () as usize)
}

/// Whether notebooks should use small problem sizes: true when the environment variable
/// `PARCOURS_SMALL` is set to anything but `0` or empty. The test runner and hosted (Binder)
/// sessions set it, so that every notebook runs in seconds on one core; on your own machine
/// notebooks use the full sizes.
///
/// ```
/// let n = if parcours::notebook::small() { 1_000 } else { 1_000_000 };
/// assert!(n >= 1_000);
/// ```
pub fn small() -> bool {
    std::env::var("PARCOURS_SMALL").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The course's cache folder, by the rule of `kernel/paths.py` and `course`:
/// `PARCOURS_HOME`, else `$XDG_CACHE_HOME/parcours`, else `~/.cache/parcours`. It is the
/// user's own: lessons keep their data and servers' files under it, never in a shared folder.
pub fn parcours_home() -> std::path::PathBuf {
    use std::path::PathBuf;
    let var = |name| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(home) = var("PARCOURS_HOME") {
        return PathBuf::from(home);
    }
    let cache = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| var("HOME").map_or_else(std::env::temp_dir, PathBuf::from).join(".cache"));
    cache.join("parcours")
}

/// A folder of the user's own for a lesson's data: `<parcours_home>/data/<name>`, never a
/// folder shared with other users (as the system's temporary folder is).
///
/// ```
/// let folder = parcours::notebook::scratch("groupby-1000000");
/// assert!(folder.ends_with("parcours/data/groupby-1000000") || std::env::var_os("PARCOURS_HOME").is_some());
/// ```
pub fn scratch(name: &str) -> std::path::PathBuf {
    parcours_home().join("data").join(name)
}

fn report_panic(info: &PanicHookInfo<'_>) {
    let line = panic_line(info);
    let report = serde_json::json!({
        "message": payload_text(info),
        "thread": std::thread::current().name().unwrap_or("unnamed"),
        "location": info.location().map(|l| format!("{}:{}", l.file(), l.line())),
    });
    // One print, so that the block's lines stay together when other threads print too.
    let mut block = format!("EVCXR_BEGIN_CONTENT {PANIC_MIME}\n{report}\nEVCXR_END_CONTENT");
    if std::thread::current().name() == Some("main") {
        block.push_str(&format!(
            "\nEVCXR_BEGIN_CONTENT text/plain\n{line}\nEVCXR_END_CONTENT"
        ));
    } else {
        block.push_str(&format!("\n{line}"));
    }
    println!("{block}");
}

fn payload_text(info: &PanicHookInfo<'_>) -> String {
    info.payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

fn panic_line(info: &PanicHookInfo<'_>) -> String {
    let message = payload_text(info);
    let thread = std::thread::current();
    let on_thread = match thread.name() {
        Some(name) if name != "main" => format!(" (on thread `{name}`)"),
        _ => String::new(),
    };
    format!(
        "\x1b[31m{PANIC_MARKER}{on_thread}: {message}\x1b[0m\n   \
         Variables declared in this cell are lost; those of earlier cells are kept."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn the_line_carries_the_marker_and_the_message() {
        let seen = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&seen);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            *sink.lock().unwrap() = panic_line(info)
        }));
        let _ = std::panic::catch_unwind(|| panic!("boom {}", 7));
        std::panic::set_hook(previous);
        let line = seen.lock().unwrap().clone();
        assert!(line.contains(PANIC_MARKER), "{line}");
        assert!(line.contains(": boom 7"), "{line}");
    }
}
