//! Module 1, the server farm: the worker that the Ansible lesson deploys to a group of hosts,
//! and the client that asks a worker how it is.
//!
//! The worker (`parcours-worker --config worker.json`) listens on TCP. A client sends the
//! shared token on the first line; the worker answers one JSON line with its status, or an
//! error if the token is wrong. It binds to loopback unless its configuration says
//! `"allow_remote": true`.
//!
//! ```
//! use parcours::farm::{WorkerConfig, query, serve_in_background};
//! let config = WorkerConfig::new("doc-worker", "127.0.0.1:0", "s3cret-token");
//! let address = serve_in_background(config).unwrap();
//! let status = query(&address, "s3cret-token").unwrap();
//! assert_eq!(status.worker, "doc-worker");
//! let refused = query(&address, "wrong").unwrap_err();
//! assert!(refused.contains("token"), "{refused}");
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A worker's configuration file (JSON), as Ansible writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerConfig {
    /// The worker's name, reported in its status.
    pub name: String,
    /// Where to listen, e.g. `127.0.0.1:7101`.
    pub bind: String,
    /// The token clients must send first.
    pub token: String,
    /// Threads the worker would use for work (reported; Module 2 uses it).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Whether `bind` may be an address other than loopback.
    #[serde(default)]
    pub allow_remote: bool,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What a worker says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Its configured name.
    pub worker: String,
    /// Its process id.
    pub pid: u32,
    /// Its configured threads.
    pub threads: usize,
    /// The support crate's version it was built from.
    pub version: String,
    /// Seconds since it started.
    pub uptime_seconds: u64,
}

impl WorkerConfig {
    /// A loopback-only configuration with the machine's number of threads.
    pub fn new(name: &str, bind: &str, token: &str) -> Self {
        WorkerConfig {
            name: name.to_string(),
            bind: bind.to_string(),
            token: token.to_string(),
            threads: default_threads(),
            allow_remote: false,
        }
    }

    /// Reads and checks a configuration file.
    ///
    /// # Errors
    /// A message that names the file and says what to fix.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the worker configuration {}: {e}",
                path.display()
            )
        })?;
        let config: WorkerConfig = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a valid worker configuration: {e}",
                path.display()
            )
        })?;
        config
            .check()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(config)
    }

    /// Refuses an empty token or name, and a non-loopback address without `allow_remote`.
    pub fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("`name` is empty".into());
        }
        if self.token.len() < 8 {
            return Err("`token` must have 8 characters at least".into());
        }
        let addresses: Vec<SocketAddr> = self
            .bind
            .to_socket_addrs()
            .map_err(|e| format!("`bind` = {:?} is not an address: {e}", self.bind))?
            .collect();
        if !self.allow_remote && addresses.iter().any(|a| !a.ip().is_loopback()) {
            return Err(format!(
                "`bind` = {:?} is not a loopback address; set \"allow_remote\": true to listen on a network",
                self.bind
            ));
        }
        Ok(())
    }
}

/// Serves status requests forever on the configured address.
///
/// # Errors
/// If the configuration is refused or the address cannot be bound.
pub fn serve(config: WorkerConfig) -> std::io::Result<()> {
    let listener = bind(&config)?;
    eprintln!(
        "parcours-worker {} listening on {}",
        config.name,
        listener.local_addr()?
    );
    accept_forever(listener, config);
    Ok(())
}

/// Starts serving on a background thread; returns the bound address (port 0 picks one).
///
/// # Errors
/// If the configuration is refused or the address cannot be bound.
pub fn serve_in_background(config: WorkerConfig) -> std::io::Result<String> {
    let listener = bind(&config)?;
    let address = listener.local_addr()?.to_string();
    std::thread::spawn(move || accept_forever(listener, config));
    Ok(address)
}

fn bind(config: &WorkerConfig) -> std::io::Result<TcpListener> {
    config
        .check()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    TcpListener::bind(&config.bind)
}

fn accept_forever(listener: TcpListener, config: WorkerConfig) {
    let started = Instant::now();
    for stream in listener.incoming().flatten() {
        let config = config.clone();
        // One thread per connection: a slow client cannot hold up the others.
        std::thread::spawn(move || {
            let _ = answer(stream, &config, started);
        });
    }
}

fn answer(stream: TcpStream, config: &WorkerConfig, started: Instant) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    // At most 1 KiB: a token, not a stream of garbage.
    BufReader::new(stream.try_clone()?.take(1024)).read_line(&mut line)?;
    let reply = if constant_time_eq(line.trim_end().as_bytes(), config.token.as_bytes()) {
        serde_json::to_string(&WorkerStatus {
            worker: config.name.clone(),
            pid: std::process::id(),
            threads: config.threads,
            version: crate::VERSION.to_string(),
            uptime_seconds: started.elapsed().as_secs(),
        })
        .expect("a status serialises")
    } else {
        r#"{"error":"wrong token"}"#.to_string()
    };
    let mut stream = stream;
    writeln!(stream, "{reply}")
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Asks the worker at `address` for its status.
///
/// # Errors
/// A message saying what went wrong: no worker there, a wrong token, a garbled answer.
pub fn query(address: &str, token: &str) -> Result<WorkerStatus, String> {
    let mut stream =
        TcpStream::connect(address).map_err(|e| format!("no worker answers at {address}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    writeln!(stream, "{token}").map_err(|e| format!("{address}: {e}"))?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(|e| format!("{address}: {e}"))?;
    if reply.contains("\"error\"") {
        return Err(format!("{address} refused: {}", reply.trim()));
    }
    serde_json::from_str(&reply).map_err(|e| format!("{address} answered {reply:?}: {e}"))
}

/// One host's line of an Ansible `PLAY RECAP`: how its tasks ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostRecap {
    /// The host's name in the inventory.
    pub host: String,
    /// Tasks that ran fine (changed ones included).
    pub ok: usize,
    /// Tasks that changed something: 0 on a second run of an idempotent playbook.
    pub changed: usize,
    /// Hosts that could not be reached.
    pub unreachable: usize,
    /// Tasks that failed.
    pub failed: usize,
    /// Tasks skipped by a condition.
    pub skipped: usize,
}

/// The `PLAY RECAP` lines of `ansible-playbook`'s output, one per host.
///
/// ```
/// let output = "PLAY RECAP ****\nweb-1 : ok=8 changed=0 unreachable=0 failed=0 skipped=2 rescued=0 ignored=0\n";
/// let recap = parcours::farm::play_recap(output);
/// assert_eq!(recap[0].host, "web-1");
/// assert_eq!((recap[0].ok, recap[0].changed, recap[0].skipped), (8, 0, 2));
/// ```
pub fn play_recap(output: &str) -> Vec<HostRecap> {
    output
        .lines()
        .skip_while(|line| !line.starts_with("PLAY RECAP"))
        .skip(1)
        .filter_map(|line| {
            let (host, counts) = line.split_once(" : ")?;
            let mut recap = HostRecap {
                host: host.trim().to_string(),
                ..HostRecap::default()
            };
            for pair in counts.split_whitespace() {
                let (key, value) = pair.split_once('=')?;
                let value = value.parse().ok()?;
                match key {
                    "ok" => recap.ok = value,
                    "changed" => recap.changed = value,
                    "unreachable" => recap.unreachable = value,
                    "failed" => recap.failed = value,
                    "skipped" => recap.skipped = value,
                    _ => {}
                }
            }
            Some(recap)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_addresses_need_consent() {
        let mut config = WorkerConfig::new("w", "0.0.0.0:0", "long-enough");
        assert!(config.check().unwrap_err().contains("allow_remote"));
        config.allow_remote = true;
        assert!(config.check().is_ok());
        assert!(
            WorkerConfig::new("w", "127.0.0.1:0", "short")
                .check()
                .is_err()
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let path =
            std::env::temp_dir().join(format!("parcours-worker-{}.json", std::process::id()));
        std::fs::write(&path, "{\"name\": \"w\"").unwrap();
        let error = WorkerConfig::load(&path).unwrap_err();
        assert!(
            error.contains("not a valid worker configuration"),
            "{error}"
        );
        std::fs::remove_file(&path).unwrap();
        let missing = WorkerConfig::load(&path).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
    }

    #[test]
    fn garbage_does_not_stop_the_worker() {
        let address =
            serve_in_background(WorkerConfig::new("w", "127.0.0.1:0", "the-token")).unwrap();
        for garbage in [&b"\0\xff\xfe"[..], &[b'x'; 5000][..], b""] {
            let mut stream = TcpStream::connect(&address).unwrap();
            let _ = stream.write_all(garbage);
        }
        assert_eq!(query(&address, "the-token").unwrap().worker, "w");
    }
}
