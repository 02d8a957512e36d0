//! How notebooks run: the kernel's start-up hook [`init`], and the [`small`] switch.
//!
//! The kernel (evcxr) runs each cell inside `catch_unwind`: a panic ends the cell, the kernel
//! stays up, and the variables of earlier cells are kept. But the kernel reports that cell to
//! Jupyter as a *success*, and the default panic message goes to stderr, long backtrace
//! included, where it can arrive after the cell has finished and be lost. So [`init`]
//! installs a panic hook that prints one clear line on stdout, the stream that arrives with
//! the cell's results, starting with [`PANIC_MARKER`] (the notebook runner looks for it).

use std::panic::PanicHookInfo;
use std::sync::Once;

/// The start of the line printed for a panic; the course's notebook runner looks for it.
pub const PANIC_MARKER: &str = "✘ This cell panicked";

/// Sets up the current kernel for the course: installs the panic hook. Called by the
/// course kernel at start-up; calling it again does nothing.
///
/// ```
/// parcours::notebook::init();
/// let caught = std::panic::catch_unwind(|| panic!("boom"));
/// assert!(caught.is_err());
/// ```
pub fn init() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| std::panic::set_hook(Box::new(report_panic)));
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

fn report_panic(info: &PanicHookInfo<'_>) {
    println!("{}", panic_line(info));
}

fn panic_line(info: &PanicHookInfo<'_>) -> String {
    let message = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
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
