//! Helpers shared by the integration tests of the course crates that start and stop processes
//! (included with `#[path]`: a crate of its own would be one more package to build).

use std::time::{Duration, Instant};

/// Whether `pid` runs: a zombie waiting for a reaper we do not control counts as gone.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            !matches!(state, Some('Z' | 'X'))
        }
        Err(_) => false,
    }
}

/// Waits until `condition` holds, up to `timeout`; returns whether it does.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}
