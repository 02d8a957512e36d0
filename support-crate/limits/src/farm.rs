//! Module 1, the server farm: the worker that the Ansible lesson deploys to a group of hosts,
//! the client that asks a worker how it is, and the folder a run of the lesson deploys into.
//!
//! The worker (`parcours-worker --config worker.json`) listens on TCP. A client sends the
//! shared token on the first line; the worker answers one JSON line with its status, or an
//! error if the token is wrong. It binds to loopback unless its configuration says
//! `"allow_remote": true`. It serves at most `max_connections` clients at once (beyond them it
//! answers that it is busy), and gives each connection `connection_seconds` in all, however
//! slowly the client keeps sending.
//!
//! ```
//! use parcours_limits::farm::{FarmError, WorkerConfig, query, serve_in_background};
//! let config = WorkerConfig::new("doc-worker", "127.0.0.1:0", "s3cret-token");
//! let address = serve_in_background(config).unwrap();
//! let status = query(&address, "s3cret-token").unwrap();
//! assert_eq!(status.worker, "doc-worker");
//! let refused = query(&address, "wrong").unwrap_err();
//! assert!(matches!(refused, FarmError::WrongToken { .. }), "{refused}");
//! assert!(refused.to_string().contains("token"), "{refused}");
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Connections a worker serves at once unless its configuration says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// Seconds a connection may last, from accept to answer, unless the configuration says otherwise.
pub const DEFAULT_CONNECTION_SECONDS: f64 = 5.0;
/// The longest line a worker reads: a token, not a stream of garbage.
const MAX_LINE_BYTES: usize = 1024;
/// The most `connection_seconds` may be: a connection is a question and an answer.
const MAX_CONNECTION_SECONDS: f64 = 3600.0;
/// How long a client waits for a worker to connect and to answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Waits between failed `accept` calls: from the first to the last, doubling.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// What went wrong in the farm. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FarmError {
    /// The configuration's `name` is empty.
    #[error(
        "the worker's `name` is empty: give each worker a name (Ansible gives the inventory's host name)"
    )]
    EmptyName,
    /// The configuration's `token` is too short to be a secret.
    #[error(
        "the `token` has {length} characters: give one of 8 at least (16 random bytes in hex are better)"
    )]
    ShortToken {
        /// Its length, in bytes.
        length: usize,
    },
    /// `bind` is not a socket address.
    #[error("`bind` = {bind:?} is not an address ({source}): write host:port, e.g. 127.0.0.1:7101")]
    BadAddress {
        /// The configured value.
        bind: String,
        /// Why it does not resolve.
        source: io::Error,
    },
    /// `bind` reaches a network but `allow_remote` is not set.
    #[error(
        "`bind` = {bind:?} is not a loopback address; set \"allow_remote\": true to listen on a network"
    )]
    RemoteNotAllowed {
        /// The configured value.
        bind: String,
    },
    /// A limit of the configuration is out of its range.
    #[error("`{setting}` must be {expected}")]
    BadLimit {
        /// The setting's name in the file.
        setting: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The configuration file cannot be read.
    #[error(
        "cannot read the worker configuration {path}: {source}; give the file Ansible wrote: --config DIR/etc/worker.json"
    )]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Other users could read the configuration file, and so the token.
    #[error(
        "{path} holds the token but its mode is {mode:03o}: other users can read it; run chmod 600 on it"
    )]
    ConfigNotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The configuration file is not valid JSON for a worker.
    #[error(
        "{path} is not a valid worker configuration: {source}; it needs name, bind and token (see the role's worker.json.j2)"
    )]
    ParseConfig {
        /// The file.
        path: PathBuf,
        /// What serde found.
        source: serde_json::Error,
    },
    /// The configuration file parses but a setting is refused.
    #[error("{path}: {source}")]
    InvalidConfig {
        /// The file.
        path: PathBuf,
        /// The setting refused: one of the variants above.
        source: Box<FarmError>,
    },
    /// The worker cannot listen on its address.
    #[error(
        "cannot listen on {address}: {source}; if another program holds this port, give the worker another one"
    )]
    Bind {
        /// The configured address.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// No worker answers at the address.
    #[error(
        "no worker answers at {address}: {source}; is it started (worker-ctl status) and is this its port?"
    )]
    Unreachable {
        /// The address asked.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// The worker refused the token.
    #[error("{address} refused the token: send the one the farm was deployed with")]
    WrongToken {
        /// The worker's address.
        address: String,
    },
    /// The worker already serves as many clients as it may.
    #[error("{address} is busy ({reason}): try again in a moment")]
    Busy {
        /// The worker's address.
        address: String,
        /// What the worker said.
        reason: String,
    },
    /// The worker refused for another reason (it found the client too slow, ...).
    #[error("{address} refused: {reason}")]
    Refused {
        /// The worker's address.
        address: String,
        /// What the worker said.
        reason: String,
    },
    /// The connection broke or timed out before a full answer.
    #[error(
        "{address} did not answer in full: {source}; the worker may have stopped or be overloaded, try again"
    )]
    Broken {
        /// The worker's address.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// The answer is not a worker's status.
    #[error(
        "{address} answered {reply:?}, which is not a worker's status ({source}): is another program on that port?"
    )]
    Garbled {
        /// The worker's address.
        address: String,
        /// What came back.
        reply: String,
        /// What serde found.
        source: serde_json::Error,
    },
    /// A file or folder of a deployment could not be made, read or removed.
    #[error(
        "cannot {action} {path}: {source}; check that the folder is yours and writable (PARCOURS_HOME moves it)"
    )]
    Folder {
        /// What was tried ("create", "remove", ...).
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A worker left behind by an ended run could not be stopped.
    #[error(
        "could not stop the worker in {path}: {reason}; stop it with {path}/bin/worker-ctl stop"
    )]
    Stop {
        /// The host's folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// No free port could be reserved.
    #[error("cannot find a free port on 127.0.0.1: {0}")]
    NoFreePort(io::Error),
}

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
    /// Clients served at once; one more is told that the worker is busy, and disconnected.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The longest a connection lasts, in seconds, from accept to answer: a client that has not
    /// sent its token by then is cut off, however slowly it keeps sending.
    #[serde(default = "default_connection_seconds")]
    pub connection_seconds: f64,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}

fn default_connection_seconds() -> f64 {
    DEFAULT_CONNECTION_SECONDS
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
    /// A loopback-only configuration with the machine's number of threads and the default
    /// limits.
    pub fn new(name: &str, bind: &str, token: &str) -> Self {
        WorkerConfig {
            name: name.to_string(),
            bind: bind.to_string(),
            token: token.to_string(),
            threads: default_threads(),
            allow_remote: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connection_seconds: DEFAULT_CONNECTION_SECONDS,
        }
    }

    /// Reads and checks a configuration file. It holds the token, so it must be readable by
    /// its owner alone (mode 600, as the role writes it).
    ///
    /// # Errors
    /// [`FarmError::ReadConfig`], [`FarmError::ConfigNotPrivate`], [`FarmError::ParseConfig`],
    /// or [`FarmError::InvalidConfig`] with the setting refused.
    pub fn load(path: &Path) -> Result<Self, FarmError> {
        let read_error = |source| FarmError::ReadConfig {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(read_error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata().map_err(read_error)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(FarmError::ConfigNotPrivate {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(read_error)?;
        let config: WorkerConfig =
            serde_json::from_str(&text).map_err(|source| FarmError::ParseConfig {
                path: path.to_path_buf(),
                source,
            })?;
        config.check().map_err(|error| FarmError::InvalidConfig {
            path: path.to_path_buf(),
            source: Box::new(error),
        })?;
        Ok(config)
    }

    /// Refuses an empty name, a short token, limits out of range, and a non-loopback address
    /// without `allow_remote`.
    ///
    /// ```
    /// use parcours_limits::farm::{FarmError, WorkerConfig};
    /// let open = WorkerConfig::new("w", "0.0.0.0:7101", "long-enough");
    /// assert!(matches!(open.check(), Err(FarmError::RemoteNotAllowed { .. })));
    /// ```
    ///
    /// # Errors
    /// The first setting refused, as a [`FarmError`] that says what to write instead.
    pub fn check(&self) -> Result<(), FarmError> {
        if self.name.trim().is_empty() {
            return Err(FarmError::EmptyName);
        }
        if self.token.len() < 8 {
            return Err(FarmError::ShortToken {
                length: self.token.len(),
            });
        }
        if self.max_connections == 0 {
            return Err(FarmError::BadLimit {
                setting: "max_connections",
                expected: "1 at least",
            });
        }
        if !(self.connection_seconds > 0.0 && self.connection_seconds <= MAX_CONNECTION_SECONDS) {
            return Err(FarmError::BadLimit {
                setting: "connection_seconds",
                expected: "a number of seconds above 0 and at most 3600",
            });
        }
        let addresses: Vec<SocketAddr> = self
            .bind
            .to_socket_addrs()
            .map_err(|source| FarmError::BadAddress {
                bind: self.bind.clone(),
                source,
            })?
            .collect();
        if !self.allow_remote && addresses.iter().any(|a| !a.ip().is_loopback()) {
            return Err(FarmError::RemoteNotAllowed {
                bind: self.bind.clone(),
            });
        }
        Ok(())
    }

    fn connection_limit(&self) -> Duration {
        // `check` keeps it finite and positive.
        Duration::from_secs_f64(self.connection_seconds)
    }
}

/// Serves status requests forever on the configured address.
///
/// # Errors
/// If the configuration is refused or the address cannot be bound.
pub fn serve(config: WorkerConfig) -> Result<(), FarmError> {
    let (listener, address) = bind(&config)?;
    eprintln!("parcours-worker {} listening on {address}", config.name);
    accept_forever(listener, config);
    Ok(())
}

/// Starts serving on a background thread; returns the bound address (port 0 picks one).
///
/// # Errors
/// If the configuration is refused or the address cannot be bound.
pub fn serve_in_background(config: WorkerConfig) -> Result<String, FarmError> {
    let (listener, address) = bind(&config)?;
    std::thread::spawn(move || accept_forever(listener, config));
    Ok(address)
}

fn bind(config: &WorkerConfig) -> Result<(TcpListener, String), FarmError> {
    config.check()?;
    let bind_error = |source| FarmError::Bind {
        address: config.bind.clone(),
        source,
    };
    let listener = TcpListener::bind(&config.bind).map_err(bind_error)?;
    let address = listener.local_addr().map_err(bind_error)?.to_string();
    Ok((listener, address))
}

/// A place among the connections served at once; given back when dropped.
struct ConnectionSlot(Arc<AtomicUsize>);

impl ConnectionSlot {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| ConnectionSlot(Arc::clone(open)))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn accept_forever(listener: TcpListener, config: WorkerConfig) {
    let started = Instant::now();
    let config = Arc::new(config);
    let open = Arc::new(AtomicUsize::new(0));
    let refusals = start_refuser(config.max_connections);
    let mut backoff = Duration::ZERO;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                stream
            }
            Err(error) => {
                // Out of file descriptors (EMFILE, ENFILE) or memory, accept fails again at
                // once until a connection closes: wait, longer each time, instead of spinning.
                if backoff.is_zero() {
                    eprintln!("parcours-worker: accept failed ({error}); backing off");
                }
                backoff = (backoff * 2).clamp(ACCEPT_BACKOFF.0, ACCEPT_BACKOFF.1);
                std::thread::sleep(backoff);
                continue;
            }
        };
        let Some(slot) = ConnectionSlot::take(&open, config.max_connections) else {
            // Told by the refuser thread; when even its queue is full, closed at once.
            let _ = refusals.try_send(stream);
            continue;
        };
        let config = Arc::clone(&config);
        // One thread per connection, at most `max_connections`: a slow client cannot hold up
        // the others. Without a thread to spare, the connection is dropped (and its slot freed).
        let _ = std::thread::Builder::new()
            .name("farm-connection".into())
            .spawn(move || {
                let _slot = slot;
                let _ = answer(stream, &config, started);
            });
    }
}

/// A thread that tells the clients beyond `max_connections` that the worker is busy, one
/// after the other, so that refusing never holds up `accept` nor needs a thread per client.
fn start_refuser(max_connections: usize) -> std::sync::mpsc::SyncSender<TcpStream> {
    let (refusals, to_refuse) = std::sync::mpsc::sync_channel::<TcpStream>(64);
    let reply = serde_json::json!({
        "error": format!("busy: {max_connections} connections already open; try again later")
    })
    .to_string();
    let spawned = std::thread::Builder::new()
        .name("farm-refuser".into())
        .spawn(move || {
            for mut stream in to_refuse {
                // A short line into a fresh socket's buffer: the timeouts only bound a client
                // that neither reads nor closes.
                let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
                if writeln!(stream, "{reply}").is_ok() {
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                    close_gently(&stream);
                }
            }
        });
    if spawned.is_err() {
        eprintln!("parcours-worker: no thread to tell clients it is busy; it will just close them");
    }
    refusals
}

/// Ends a connection without a reset: closing a socket with unread data makes the system
/// send one, and the client may then lose the answer. So: send the end of the answer, then
/// read and drop what the client sent that was not read (a few KiB at most, within the
/// socket's read timeout or at once if it does not block).
fn close_gently(stream: &TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 1024];
    for _ in 0..4 {
        match (&mut &*stream).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn answer(mut stream: TcpStream, config: &WorkerConfig, started: Instant) -> io::Result<()> {
    let limit = config.connection_limit();
    let deadline = Instant::now() + limit;
    let reply = match read_line_before(&mut stream, deadline) {
        Ok(line) if tokens_match(line.trim_ascii_end(), config.token.as_bytes()) => {
            serde_json::to_string(&WorkerStatus {
                worker: config.name.clone(),
                pid: std::process::id(),
                threads: config.threads,
                version: parcours::VERSION.to_string(),
                uptime_seconds: started.elapsed().as_secs(),
            })
            .expect("a status serialises")
        }
        Ok(_) => r#"{"error":"wrong token"}"#.to_string(),
        Err(error) if matches!(error.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
            serde_json::json!({
                "error": format!("too slow: send the token and a newline within {} s", limit.as_secs_f64())
            })
            .to_string()
        }
        Err(error) => return Err(error),
    };
    // The answer too must fit in the limit; a moment more to tell a slow client why.
    let left = deadline.saturating_duration_since(Instant::now());
    stream.set_write_timeout(Some(left.max(Duration::from_millis(100))))?;
    writeln!(stream, "{reply}")?;
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    close_gently(&stream);
    Ok(())
}

/// The first line the client sends (without its newline), read before `deadline`: the time
/// limit is on the whole line, not on each read, so a client that sends a byte a second is
/// cut off too. At most [`MAX_LINE_BYTES`]; what comes after is ignored.
fn read_line_before(stream: &mut TcpStream, deadline: Instant) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut buffer = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Ok(line);
        }
        line.extend_from_slice(&buffer[..read]);
        if let Some(end) = line.iter().position(|&byte| byte == b'\n') {
            line.truncate(end);
            return Ok(line);
        }
        if line.len() >= MAX_LINE_BYTES {
            return Ok(line);
        }
    }
}

/// Whether `given` is the token, in constant time. Both are hashed first, so that neither
/// where they differ nor their lengths change the time taken; `subtle` compares the digests
/// without a branch on their bytes.
fn tokens_match(given: &[u8], token: &[u8]) -> bool {
    let given = Sha256::digest(given);
    let token = Sha256::digest(token);
    given.as_slice().ct_eq(token.as_slice()).into()
}

/// Asks the worker at `address` for its status.
///
/// # Errors
/// [`FarmError::Unreachable`] (no worker there), [`FarmError::WrongToken`],
/// [`FarmError::Busy`], [`FarmError::Refused`], [`FarmError::Broken`] (no full answer in
/// time), [`FarmError::Garbled`] (not a worker's answer).
pub fn query(address: &str, token: &str) -> Result<WorkerStatus, FarmError> {
    let unreachable = |source| FarmError::Unreachable {
        address: address.to_string(),
        source,
    };
    let broken = |source| FarmError::Broken {
        address: address.to_string(),
        source,
    };
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
    let mut connected = None;
    for socket_address in address.to_socket_addrs().map_err(unreachable)? {
        match TcpStream::connect_timeout(&socket_address, CLIENT_TIMEOUT) {
            Ok(stream) => {
                connected = Some(stream);
                break;
            }
            Err(error) => last_error = error,
        }
    }
    let mut stream = connected.ok_or_else(|| unreachable(last_error))?;
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(CLIENT_TIMEOUT)))
        .map_err(broken)?;
    writeln!(stream, "{token}").map_err(broken)?;
    let mut reply = Vec::new();
    BufReader::new(stream.take(MAX_LINE_BYTES as u64 * 4))
        .read_until(b'\n', &mut reply)
        .map_err(broken)?;
    let reply = String::from_utf8_lossy(&reply).trim().to_string();
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_str(&reply)
        && let Some(reason) = object.get("error").and_then(|e| e.as_str())
    {
        let address = address.to_string();
        let reason = reason.to_string();
        return Err(match reason.as_str() {
            "wrong token" => FarmError::WrongToken { address },
            _ if reason.starts_with("busy") => FarmError::Busy { address, reason },
            _ => FarmError::Refused { address, reason },
        });
    }
    serde_json::from_str(&reply).map_err(|source| FarmError::Garbled {
        address: address.to_string(),
        reply,
        source,
    })
}

/// `n` distinct ports free on 127.0.0.1 right now, for workers to listen on: fixed ports
/// collide between users of one machine and between two runs of the lesson.
///
/// ```
/// let ports = parcours_limits::farm::free_ports(2).unwrap();
/// assert_ne!(ports[0], ports[1]);
/// ```
///
/// # Errors
/// [`FarmError::NoFreePort`] if the system gives none.
pub fn free_ports(n: usize) -> Result<Vec<u16>, FarmError> {
    // Every listener is kept until all are chosen, so the ports differ.
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()
        .map_err(FarmError::NoFreePort)?;
    listeners
        .iter()
        .map(|listener| Ok(listener.local_addr()?.port()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(FarmError::NoFreePort)
}

/// Writes `contents` to a file that only its owner may read and write (mode 600), such as a
/// file of variables that holds a token: a secret belongs in such a file, never on a command
/// line, which every user of the machine can read (`ps`).
///
/// # Errors
/// [`FarmError::Folder`] if the file cannot be written.
pub fn write_private_file(path: &Path, contents: &str) -> Result<(), FarmError> {
    let error = |source| FarmError::Folder {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path).map_err(error)?;
        // An existing file keeps its mode through open: set it before writing the secret.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(error)?;
        (&file).write_all(contents.as_bytes()).map_err(error)
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path).map_err(error)?;
        file.write_all(contents.as_bytes()).map_err(error)
    }
}

/// Where a run's owner keeps its lock.
const OWNER_LOCK: &str = "owner.lock";
/// How the folders of runs begin.
const RUN_PREFIX: &str = "run-";

/// The folder one run of the farm lesson deploys into (Ansible's `deploy_root`), under a
/// parent of the user's own (the lesson uses `$PARCOURS_HOME/farm`).
///
/// The run's owner (the notebook's process) holds a lock on the folder's `owner.lock` for as
/// long as it lives. Workers are daemons: they outlive a kernel that is killed or restarted
/// before the lesson's last cell stops them. So [`DeployRoot::claim`] first stops the workers
/// of every run whose lock is free (its owner is gone) and removes its folder, leaving alone
/// the runs whose owner lives (another copy of the notebook, another test).
///
/// ```
/// use parcours_limits::farm::DeployRoot;
/// let parent = std::env::temp_dir().join(format!("parcours-doc-farm-{}", std::process::id()));
/// let first = DeployRoot::claim(&parent).unwrap();
/// let second = DeployRoot::claim(&parent).unwrap();
/// assert_ne!(first.path(), second.path());
/// assert!(second.cleaned().is_empty(), "the first run's owner lives");
/// first.finish().unwrap();
/// second.finish().unwrap();
/// assert!(!first.path().exists());
/// # std::fs::remove_dir(&parent).unwrap();
/// ```
#[derive(Debug)]
pub struct DeployRoot {
    path: PathBuf,
    cleaned: Vec<PathBuf>,
    // Held for the run's lifetime; the kernel releases it when the process ends.
    _lock: File,
}

impl DeployRoot {
    /// Stops what ended runs left under `parent`, then makes a new folder there for this run,
    /// readable by its owner alone. `parent` is created if needed, with mode 700.
    ///
    /// # Errors
    /// [`FarmError::Folder`] if a folder cannot be made or removed, [`FarmError::Stop`] if a
    /// worker of an ended run cannot be stopped.
    pub fn claim(parent: &Path) -> Result<DeployRoot, FarmError> {
        create_private_dir(parent, true)?;
        let cleaned = stop_ended_runs(parent)?;
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.as_nanos());
        let name = format!("{RUN_PREFIX}{}-{stamp:x}", std::process::id());
        // Made and locked under a name that the cleaner ignores, then renamed: no other run
        // ever sees this folder without its lock.
        let staging = parent.join(format!(".new-{name}"));
        create_private_dir(&staging, false)?;
        let lock_path = staging.join(OWNER_LOCK);
        let lock = File::create(&lock_path).map_err(|source| FarmError::Folder {
            action: "create",
            path: lock_path.clone(),
            source,
        })?;
        lock.try_lock().map_err(|error| FarmError::Folder {
            action: "lock",
            path: lock_path,
            source: error.into(),
        })?;
        let path = parent.join(name);
        std::fs::rename(&staging, &path).map_err(|source| FarmError::Folder {
            action: "rename",
            path: staging,
            source,
        })?;
        Ok(DeployRoot {
            path,
            cleaned,
            _lock: lock,
        })
    }

    /// The folder: give it to Ansible as `deploy_root`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folders of ended runs whose workers [`DeployRoot::claim`] stopped and removed.
    pub fn cleaned(&self) -> &[PathBuf] {
        &self.cleaned
    }

    /// Stops any worker still running from this folder and removes the folder (the lock is
    /// given back when the value is dropped). Run it after `stop.yml`.
    ///
    /// # Errors
    /// [`FarmError::Stop`] or [`FarmError::Folder`].
    pub fn finish(&self) -> Result<(), FarmError> {
        stop_workers_in(&self.path)?;
        remove_folder(&self.path)
    }
}

/// Stops the workers of the runs under `parent` whose owner has ended, and removes their
/// folders; returns those folders. See [`DeployRoot`].
///
/// # Errors
/// [`FarmError::Folder`] or [`FarmError::Stop`].
pub fn stop_ended_runs(parent: &Path) -> Result<Vec<PathBuf>, FarmError> {
    let folder_error = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| FarmError::Folder {
            action,
            path,
            source,
        }
    };
    let mut cleaned = Vec::new();
    for entry in std::fs::read_dir(parent).map_err(folder_error("read", parent))? {
        let run = entry.map_err(folder_error("read", parent))?.path();
        let is_run = run
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with(RUN_PREFIX));
        if !is_run || !run.is_dir() {
            continue;
        }
        let lock_path = run.join(OWNER_LOCK);
        // Without its lock file, a run's folder was partly removed: it has ended too.
        let lock = match File::open(&lock_path) {
            Ok(lock) => Some(lock),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(folder_error("open", &lock_path)(error)),
        };
        if let Some(lock) = &lock {
            match lock.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => continue, // its owner lives
                Err(std::fs::TryLockError::Error(error)) => {
                    return Err(folder_error("lock", &lock_path)(error));
                }
            }
        }
        stop_workers_in(&run)?;
        remove_folder(&run)?;
        cleaned.push(run);
    }
    Ok(cleaned)
}

/// Runs `worker-ctl stop` in each host's folder of a run.
fn stop_workers_in(run: &Path) -> Result<(), FarmError> {
    let hosts = match std::fs::read_dir(run) {
        Ok(hosts) => hosts,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(FarmError::Folder {
                action: "read",
                path: run.to_path_buf(),
                source,
            });
        }
    };
    for host in hosts.flatten() {
        let control = host.path().join("bin").join("worker-ctl");
        if !control.is_file() {
            continue;
        }
        let stop_error = |reason| FarmError::Stop {
            path: host.path(),
            reason,
        };
        let output = Command::new(&control)
            .arg("stop")
            .output()
            .map_err(|error| stop_error(error.to_string()))?;
        if !output.status.success() {
            return Err(stop_error(format!(
                "worker-ctl stop exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
    }
    Ok(())
}

fn create_private_dir(path: &Path, may_exist: bool) -> Result<(), FarmError> {
    let error = |source| FarmError::Folder {
        action: "create",
        path: path.to_path_buf(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(may_exist);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(path).map_err(error)?;
        // An existing folder keeps its mode: make it private too (it fails if not ours).
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(error)
    }
    #[cfg(not(unix))]
    {
        builder.create(path).map_err(error)
    }
}

fn remove_folder(path: &Path) -> Result<(), FarmError> {
    match std::fs::remove_dir_all(path) {
        Err(source) if source.kind() != io::ErrorKind::NotFound => Err(FarmError::Folder {
            action: "remove",
            path: path.to_path_buf(),
            source,
        }),
        _ => Ok(()),
    }
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
/// let recap = parcours_limits::farm::play_recap(output);
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

    fn scratch(name: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("parcours-farm-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        path
    }

    #[test]
    fn remote_addresses_need_consent() {
        let mut config = WorkerConfig::new("w", "0.0.0.0:0", "long-enough");
        let refused = config.check().unwrap_err();
        assert!(matches!(refused, FarmError::RemoteNotAllowed { .. }));
        assert!(refused.to_string().contains("allow_remote"), "{refused}");
        config.allow_remote = true;
        assert!(config.check().is_ok());
        assert!(matches!(
            WorkerConfig::new("w", "127.0.0.1:0", "short").check(),
            Err(FarmError::ShortToken { length: 5 })
        ));
        assert!(matches!(
            WorkerConfig::new("w", "nowhere", "long-enough").check(),
            Err(FarmError::BadAddress { .. })
        ));
    }

    #[test]
    fn limits_out_of_range_are_refused() {
        let mut config = WorkerConfig::new("w", "127.0.0.1:0", "long-enough");
        config.max_connections = 0;
        let refused = config.check().unwrap_err();
        assert!(refused.to_string().contains("max_connections"), "{refused}");
        config.max_connections = 1;
        for seconds in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e9] {
            config.connection_seconds = seconds;
            assert!(
                matches!(
                    config.check(),
                    Err(FarmError::BadLimit {
                        setting: "connection_seconds",
                        ..
                    })
                ),
                "{seconds} accepted"
            );
        }
        config.connection_seconds = 0.25;
        assert!(config.check().is_ok());
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let folder = scratch("files");
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("worker.json");
        write_private_file(&path, "{\"name\": \"w\"").unwrap();
        let error = WorkerConfig::load(&path).unwrap_err();
        assert!(matches!(error, FarmError::ParseConfig { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains("not a valid worker configuration"),
            "{error}"
        );
        write_private_file(
            &path,
            r#"{"name": "w", "bind": "127.0.0.1:0", "token": "short"}"#,
        )
        .unwrap();
        let error = WorkerConfig::load(&path).unwrap_err();
        assert!(
            matches!(&error, FarmError::InvalidConfig { source, .. } if matches!(**source, FarmError::ShortToken { .. })),
            "{error}"
        );
        assert!(error.to_string().contains("8 at least"), "{error}");
        std::fs::remove_file(&path).unwrap();
        let missing = WorkerConfig::load(&path).unwrap_err();
        assert!(matches!(missing, FarmError::ReadConfig { .. }), "{missing}");
        assert!(missing.to_string().contains("cannot read"), "{missing}");
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_configuration_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let folder = scratch("modes");
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("worker.json");
        let config = WorkerConfig::new("w", "127.0.0.1:0", "long-enough");
        std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = WorkerConfig::load(&path).unwrap_err();
        assert!(
            matches!(error, FarmError::ConfigNotPrivate { mode: 0o644, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("chmod 600"), "{error}");
        // Rewriting through write_private_file makes it private again.
        write_private_file(&path, &serde_json::to_string(&config).unwrap()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(WorkerConfig::load(&path).unwrap(), config);
        std::fs::remove_dir_all(&folder).unwrap();
    }

    #[test]
    fn tokens_are_compared_whole() {
        assert!(tokens_match(b"the-token", b"the-token"));
        for other in [
            &b"the-tokeN"[..],
            b"the-toke",
            b"the-token-and-more",
            b"",
            b"x",
        ] {
            assert!(!tokens_match(other, b"the-token"), "{other:?} matched");
        }
    }

    #[test]
    fn the_client_tells_the_refusals_apart() {
        let address =
            serve_in_background(WorkerConfig::new("w", "127.0.0.1:0", "the-token")).unwrap();
        assert!(matches!(
            query(&address, "not-it"),
            Err(FarmError::WrongToken { .. })
        ));
        let port = free_ports(1).unwrap()[0];
        let nobody = query(&format!("127.0.0.1:{port}"), "the-token").unwrap_err();
        assert!(matches!(nobody, FarmError::Unreachable { .. }), "{nobody}");
        assert!(nobody.to_string().contains("worker-ctl status"), "{nobody}");
    }

    #[test]
    fn a_full_worker_says_it_is_busy_and_serves_again_once_freed() {
        let mut config = WorkerConfig::new("w", "127.0.0.1:0", "the-token");
        config.max_connections = 1;
        let address = serve_in_background(config).unwrap();
        let holder = TcpStream::connect(&address).unwrap();
        // The worker takes the slot when it accepts: wait until it has.
        let deadline = Instant::now() + Duration::from_secs(5);
        let busy = loop {
            match query(&address, "the-token") {
                Err(busy @ FarmError::Busy { .. }) => break busy,
                other => assert!(Instant::now() < deadline, "never busy: {other:?}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(busy.to_string().contains("1 connections"), "{busy}");
        drop(holder);
        let deadline = Instant::now() + Duration::from_secs(5);
        while query(&address, "the-token").is_err() {
            assert!(Instant::now() < deadline, "the slot was not given back");
            std::thread::sleep(Duration::from_millis(20));
        }
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

    #[test]
    fn free_ports_differ_and_are_free() {
        let ports = free_ports(3).unwrap();
        assert_eq!(ports.len(), 3);
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
        for port in ports {
            TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }

    #[test]
    fn ended_runs_are_removed_and_live_ones_kept() {
        let parent = scratch("runs");
        let live = DeployRoot::claim(&parent).unwrap();
        let ended = DeployRoot::claim(&parent).unwrap();
        let ended_path = ended.path().to_path_buf();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&parent).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "the parent is private");
        }
        // Dropping the value gives its lock back, as the end of its process would.
        drop(ended);
        let next = DeployRoot::claim(&parent).unwrap();
        assert_eq!(next.cleaned(), std::slice::from_ref(&ended_path));
        assert!(!ended_path.exists());
        assert!(live.path().exists(), "a live run was removed");
        live.finish().unwrap();
        next.finish().unwrap();
        std::fs::remove_dir_all(&parent).unwrap();
    }
}
