//! The farm's worker under hostile or heavy load, from outside: the real `parcours-worker`
//! binary, configured by a file as Ansible configures it, and raw TCP clients. Every wait is
//! bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "farm-test-token-0123";

/// A worker process, killed when dropped.
struct Worker {
    child: Child,
    address: String,
    folder: PathBuf,
}

impl Worker {
    /// Starts the worker with `settings` added to its configuration (JSON members), under a
    /// limit of `max_files` open files when given.
    fn start(name: &str, settings: &str, max_files: Option<u32>) -> Worker {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let folder = std::env::temp_dir().join(format!(
            "parcours-farm-worker-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&folder).unwrap();
        let config = folder.join("worker.json");
        let separator = if settings.is_empty() { "" } else { ", " };
        std::fs::write(
            &config,
            format!(
                r#"{{"name": "{name}", "bind": "{address}", "token": "{TOKEN}"{separator}{settings}}}"#
            ),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let binary = env!("CARGO_BIN_EXE_parcours-worker");
        let mut command = match max_files {
            // `exec`: the worker keeps the shell's pid, and the limit.
            Some(limit) => {
                let mut command = Command::new("sh");
                command.args([
                    "-c",
                    &format!(r#"ulimit -n {limit} && exec "$0" --config "$1""#),
                    binary,
                ]);
                command.arg(&config);
                command
            }
            None => {
                let mut command = Command::new(binary);
                command.arg("--config").arg(&config);
                command
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let worker = Worker {
            child,
            address,
            folder,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        // This worker's answer, not another's that a parallel test started on the same port.
        let own_name = format!("\"worker\":\"{name}\"");
        while !worker.ask(TOKEN).unwrap_or_default().contains(&own_name) {
            assert!(Instant::now() < deadline, "the worker did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        worker
    }

    /// Sends `token` and returns the worker's answer, if it gives one.
    fn ask(&self, token: &str) -> Option<String> {
        let mut stream = TcpStream::connect(&self.address).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        writeln!(stream, "{token}").ok()?;
        let mut reply = String::new();
        BufReader::new(stream).read_line(&mut reply).ok()?;
        (!reply.is_empty()).then_some(reply)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

#[test]
fn a_client_that_dribbles_is_cut_off_at_the_total_limit() {
    let worker = Worker::start("dribble", r#""connection_seconds": 1"#, None);
    let mut stream = TcpStream::connect(&worker.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let mut reply = Vec::new();
    let mut buffer = [0u8; 512];
    // One byte every 100 ms: each of the worker's reads gets a byte long before any per-read
    // timeout, and 1 KiB would take 100 s.
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still connected after 10 s of dribbling"
        );
        let _ = stream.write_all(b"x");
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => reply.extend_from_slice(&buffer[..read]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_millis(900) && lasted < Duration::from_secs(3),
        "cut off after {lasted:?}, the limit is 1 s"
    );
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.contains("too slow"), "{reply:?}");
    assert!(
        worker
            .ask(TOKEN)
            .unwrap()
            .contains("\"worker\":\"dribble\"")
    );
}

/// A connection that holds one of the worker's places: connected, and not told that the
/// worker is busy (the connection before may keep its place a moment after its answer).
fn hold_a_place(address: &str) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match stream.read(&mut [0u8; 64]) {
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return stream;
            }
            _ => assert!(Instant::now() < deadline, "no place to hold"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_client_beyond_the_limit_is_told_the_worker_is_busy() {
    let worker = Worker::start(
        "crowded",
        r#""max_connections": 2, "connection_seconds": 20"#,
        None,
    );
    let holders = [hold_a_place(&worker.address), hold_a_place(&worker.address)];
    let reply = worker.ask(TOKEN).unwrap_or_default();
    assert!(reply.contains("busy: 2 connections"), "{reply:?}");
    drop(holders);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !worker
        .ask(TOKEN)
        .unwrap_or_default()
        .contains("\"worker\":\"crowded\"")
    {
        assert!(Instant::now() < deadline, "the worker did not serve again");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// CPU seconds (user and system) the process has used.
#[cfg(target_os = "linux")]
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    // utime and stime, fields 14 and 15 of proc(5); the list starts at field 3.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let output = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    let per_second: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    ticks / per_second
}

/// Descriptors the process has open with a number below `limit`: all of them when it has
/// none left (descriptors inherited above the limit do not count).
#[cfg(target_os = "linux")]
fn descriptors_below(pid: u32, limit: u32) -> u32 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&fd| fd < limit)
        .count() as u32
}

#[cfg(target_os = "linux")]
#[test]
fn out_of_file_descriptors_the_worker_waits_instead_of_spinning() {
    // Two limits, one odd and one even: a worker that spent two descriptors per connection
    // would fill up exactly under only one of them.
    for limit in [31, 32] {
        let worker = Worker::start(
            &format!("descriptors-{limit}"),
            r#""max_connections": 1000, "connection_seconds": 30"#,
            Some(limit),
        );
        // More idle clients than the worker has descriptors: it accepts until it has none
        // left, the rest wait in the listen queue, and every further accept fails (EMFILE).
        let held: Vec<TcpStream> = (0..64)
            .map(|_| TcpStream::connect(&worker.address).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            descriptors_below(worker.pid(), limit),
            limit,
            "the worker was not out of descriptors"
        );
        let before = cpu_seconds(worker.pid());
        std::thread::sleep(Duration::from_secs(1));
        let used = cpu_seconds(worker.pid()) - before;
        assert!(
            used < 0.25,
            "the worker used {used:.2} s of CPU in 1 s while out of descriptors"
        );
        drop(held);
        let own_name = format!("\"worker\":\"descriptors-{limit}\"");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !worker.ask(TOKEN).unwrap_or_default().contains(&own_name) {
            assert!(
                Instant::now() < deadline,
                "the worker did not serve again once clients left"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
