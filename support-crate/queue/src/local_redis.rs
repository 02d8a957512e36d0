//! A real `redis-server` started by the course: loopback, a port of its own, a generated
//! password, its append-only file on.

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::QueueError;

/// How often Redis forces its append-only file to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fsync {
    /// `appendfsync everysec`: a killed `redis-server` loses nothing it acknowledged (the
    /// file is written before the answer); a power cut, up to about a second.
    #[default]
    EverySecond,
    /// `appendfsync always`: every write on disk before the answer, slower.
    Always,
}

const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A `redis-server` child process, its folder (configuration, password, data, log) and port.
///
/// Dropping it kills the server; [`LocalRedis::stop`] stops it gracefully (Redis writes its
/// append-only file), [`LocalRedis::kill`] as a crash would, [`LocalRedis::restart`] starts it
/// again on the same data, port and password.
pub struct LocalRedis {
    dir: PathBuf,
    port: u16,
    password: String,
    fsync: Fsync,
    child: Option<Child>,
}

impl fmt::Debug for LocalRedis {
    // Never the password: a notebook shows what it prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalRedis")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .field("password", &"<in the password file>")
            .field("fsync", &self.fsync)
            .field("pid", &self.pid())
            .finish()
    }
}

impl LocalRedis {
    /// Starts `redis-server` in `dir` (created, mode 0700) on a free loopback port, with a
    /// new password written to `dir/password` (mode 0600) and in the configuration file
    /// (mode 0600), never on a command line.
    ///
    /// # Errors
    /// [`QueueError::RedisMissing`] without `redis-server`; [`QueueError::Broker`] with the
    /// end of its log when it does not answer.
    pub fn start_in(dir: &Path, fsync: Fsync) -> Result<Self, QueueError> {
        if !redis_installed() {
            return Err(QueueError::RedisMissing);
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir.join("data"))
            .map_err(QueueError::io(format!("creating {}", dir.display())))?;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| QueueError::Broker(format!("no random password: {e}")))?;
        let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        write_private(&dir.join("password"), &password)?;
        let mut redis = LocalRedis {
            dir: dir.to_path_buf(),
            port: free_port()?,
            password,
            fsync,
            child: None,
        };
        redis.launch()?;
        Ok(redis)
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The file holding the password (mode 0600): what workers and Celery read.
    pub fn password_file(&self) -> PathBuf {
        self.dir.join("password")
    }

    /// Its folder: configuration, password, log, and `data/` (the append-only file).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The address with the password, for a client library: keep it out of printed output.
    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}/0", self.password, self.port)
    }

    /// Whether the server is up and answers `PING` with the password.
    pub fn is_running(&mut self) -> bool {
        let alive = match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        };
        alive && ping(self.port, &self.password).is_ok()
    }

    /// Sends one command (its words) and returns Redis' answer as text, e.g.
    /// `redis.command(&["INFO", "persistence"])`.
    ///
    /// # Errors
    /// When the server cannot be reached or answers with an error.
    pub fn command(&self, words: &[&str]) -> Result<String, QueueError> {
        let Some((name, args)) = words.split_first() else {
            return Err(QueueError::Broker("an empty command".into()));
        };
        let value: redis::Value = redis::cmd(name)
            .arg(args)
            .query(&mut client(self.port, &self.password)?)
            .map_err(QueueError::broker)?;
        Ok(text(value))
    }

    /// Stops the server gracefully (`SIGTERM`: Redis writes and syncs its append-only file,
    /// then exits) and waits for it.
    ///
    /// # Errors
    /// When it does not exit within 15 s (it is then killed).
    pub fn stop(&mut self) -> Result<ExitStatus, QueueError> {
        self.signal_and_wait(libc::SIGTERM)
    }

    /// Kills the server (`SIGKILL`), as a crash would: what it had not written is lost.
    ///
    /// # Errors
    /// When it cannot be signalled.
    pub fn kill(&mut self) -> Result<ExitStatus, QueueError> {
        self.signal_and_wait(libc::SIGKILL)
    }

    /// Starts the server again, on the same data, port and password, with `fsync`.
    ///
    /// # Errors
    /// As [`LocalRedis::start_in`].
    pub fn restart(&mut self, fsync: Fsync) -> Result<(), QueueError> {
        if self.child.is_some() {
            self.stop()?;
        }
        self.fsync = fsync;
        self.launch()
    }

    fn launch(&mut self) -> Result<(), QueueError> {
        let config = self.dir.join("redis.conf");
        let log = self.dir.join("redis.log");
        let fsync = match self.fsync {
            Fsync::EverySecond => "everysec",
            Fsync::Always => "always",
        };
        let text = format!(
            "# Written by the course (parcours-queue): loopback only, a password, the append-only file on.\n\
             bind 127.0.0.1\nprotected-mode yes\nport {port}\ndaemonize no\n\
             logfile {log}\ndir {data}\nsave \"\"\nappendonly yes\nappendfsync {fsync}\n\
             requirepass {password}\n",
            port = self.port,
            log = log.display(),
            data = self.dir.join("data").display(),
            password = self.password,
        );
        write_private(&config, &text)?;
        let mut command = Command::new("redis-server");
        command
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = parcours::launch::spawn_tied(command)
            .map_err(|e| QueueError::Broker(format!("cannot start redis-server: {e}")))?;
        let started = Instant::now();
        loop {
            if ping(self.port, &self.password).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                let tail = fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(6).collect();
                return Err(QueueError::Broker(format!(
                    "redis-server did not answer on port {} ({}); the end of {}:\n{}",
                    self.port,
                    exited.map_or("still starting after 15 s".into(), |s| s.to_string()),
                    log.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal_and_wait(&mut self, signal: libc::c_int) -> Result<ExitStatus, QueueError> {
        let Some(mut child) = self.child.take() else {
            return Err(QueueError::Broker("redis-server is not running".into()));
        };
        // SAFETY: kill(2) on our own child's pid; the child is not reaped yet, so the pid is its.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if started.elapsed() < STOP_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(QueueError::Broker(format!(
                        "redis-server did not stop within {STOP_TIMEOUT:?}: killed"
                    )));
                }
            }
        }
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether `redis-server` is on the PATH.
pub(crate) fn redis_installed() -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("redis-server").is_file())
    })
}

fn write_private(path: &Path, text: &str) -> Result<(), QueueError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(QueueError::io(format!("writing {}", path.display())))?;
    // An older file keeps its mode through `open`: set it again.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(text.as_bytes()))
        .map_err(QueueError::io(format!("writing {}", path.display())))
}

fn free_port() -> Result<u16, QueueError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(QueueError::io("finding a free port on 127.0.0.1"))
}

fn client(port: u16, password: &str) -> Result<redis::Connection, QueueError> {
    let url = format!("redis://:{password}@127.0.0.1:{port}/0");
    redis::Client::open(url)
        .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(5)))
        .map_err(|e| QueueError::Broker(format!("cannot reach redis on 127.0.0.1:{port}: {e}")))
}

fn ping(port: u16, password: &str) -> Result<(), QueueError> {
    let answer: String = redis::cmd("PING")
        .query(&mut client(port, password)?)
        .map_err(QueueError::broker)?;
    match answer.as_str() {
        "PONG" => Ok(()),
        other => Err(QueueError::Broker(format!("PING answered {other:?}"))),
    }
}

fn text(value: redis::Value) -> String {
    use redis::Value;
    match value {
        Value::Nil => String::new(),
        Value::Int(n) => n.to_string(),
        Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => s,
        Value::Okay => "OK".into(),
        Value::Array(items) | Value::Set(items) => {
            items.into_iter().map(text).collect::<Vec<_>>().join("\n")
        }
        other => format!("{other:?}"),
    }
}
