//! Starting the course's programs from a notebook: built when missing, and never outliving
//! the kernel that started them.
//!
//! On Linux each child asks the kernel for `SIGKILL` when its parent dies
//! (`prctl(PR_SET_PDEATHSIG)`), which covers a kernel restarted or killed. The kernel sends it
//! when the *thread* that forked the child ends, not the process, so every child is started
//! from one thread that lives as long as the process ([`spawn_tied`]). Modules 2, 4 and 5 start
//! their managers, workers, brokers and schedulers this way.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::notebook::parcours_home;

/// The data engines' crates, built only inside the course kernel (`KERNEL_ONLY_CRATES` in
/// `course`, docs/kernel.md): a release build leaves them out rather than compile polars,
/// DataFusion and Ballista a second time.
pub const KERNEL_ONLY: [&str; 2] = ["parcours-frames", "parcours-ballista"];

/// Builds every binary of the crate of `manifest` with cargo, in release mode, into
/// `$PARCOURS_HOME/target` (by default `~/.cache/parcours/target`, where `./course setup` built
/// them: then cargo finds them up to date in a second); returns the folder that holds them.
/// For a notebook, whose kernel compiled the course's crates as libraries only. `what` names
/// the binaries in the progress lines.
///
/// # Errors
/// When cargo cannot be run or the build fails; the message ends with cargo's last lines.
pub fn build_binaries(manifest: &Path, what: &str) -> Result<PathBuf, String> {
    let target = parcours_home().join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        // The whole workspace, as `./course setup` builds it: one package alone resolves other
        // features and rebuilds the course's crates (each way in turn).
        .args(["build", "--release", "--workspace", "--bins"])
        .args(KERNEL_ONLY.iter().flat_map(|&name| ["--exclude", name]))
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(&target)
        .stdin(Stdio::null());
    println!(
        "building the course's binaries ({what}) into {} (a few minutes the first time)...",
        target.display()
    );
    let started = Instant::now();
    let mut cargo_process = command.stderr(Stdio::piped()).spawn().map_err(|e| {
        format!("cannot run {}: {e} (is cargo on the PATH?)", Path::new(&cargo).display())
    })?;
    // Cargo's log, kept for an error message; a progress line now and then meanwhile (a
    // notebook shows each printed line, so not one per crate).
    let mut log = Vec::new();
    let mut last_progress = Instant::now();
    let stderr = cargo_process.stderr.take().expect("stderr is piped");
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if last_progress.elapsed() >= Duration::from_secs(20)
            && let Some(crate_name) = line.trim_start().strip_prefix("Compiling ")
        {
            println!(
                "still building ({:.0} s, compiling {crate_name})",
                started.elapsed().as_secs_f64()
            );
            last_progress = Instant::now();
        }
        log.push(line);
    }
    let status = cargo_process.wait().map_err(|e| format!("cargo did not finish: {e}"))?;
    if !status.success() {
        let tail = &log[log.len().saturating_sub(15)..];
        return Err(format!(
            "building the course's binaries failed ({status}); run `cargo build --release --workspace --bins{} \
             --manifest-path {}` to see why. Its last lines:\n{}",
            KERNEL_ONLY.iter().map(|name| format!(" --exclude {name}")).collect::<String>(),
            manifest.display(),
            tail.join("\n")
        ));
    }
    println!("binaries ready in {:.1} s", started.elapsed().as_secs_f64());
    Ok(target.join("release"))
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Starts `command` from a thread that lives as long as the process, with (on Linux)
/// `PR_SET_PDEATHSIG` set to `SIGKILL`: the child dies with this process, however it ends.
///
/// # Errors
/// When the command cannot be started.
pub fn spawn_tied(mut command: Command) -> std::io::Result<Child> {
    static LAUNCHER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    die_with_parent(&mut command);
    let launcher = LAUNCHER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("parcours-launcher".into())
            .spawn(move || {
                for (mut command, reply) in incoming {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("the launcher thread starts");
        Mutex::new(requests)
    });
    let (reply, answer) = mpsc::channel();
    launcher
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply))
        .map_err(|_| std::io::Error::other("the launcher thread is gone"))?;
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the launcher thread did not answer"))?
}

#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: prctl and getppid are, and nothing allocates.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody would send the signal.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {
    // No equivalent here: `LocalCluster`'s drop and `stop` are the only guards.
}

