use std::time::Duration;

/// What can go wrong with a broker, a queue or the workers; each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// `redis-server` is not on the PATH.
    #[error(
        "redis-server is not installed: run `./course setup` (it installs Debian's redis-server), \
         or use the SQLite broker: PARCOURS_BROKER=sqlite"
    )]
    RedisMissing,
    /// `PARCOURS_BROKER` names no broker the course knows.
    #[error("PARCOURS_BROKER={0:?}: the course knows `redis` and `sqlite`")]
    UnknownBroker(String),
    /// The broker did not start, or stopped.
    #[error("the broker: {0}")]
    Broker(String),
    /// A worker process could not be started, or the worker program is missing.
    #[error("worker processes: {0}")]
    Workers(String),
    /// A flow that cannot run, or was started wrong.
    #[error("the flow: {0}")]
    Flow(String),
    /// A beat's schedule that does not parse, or a beat that failed.
    #[error("the beat: {0}")]
    Beat(String),
    /// A wait ran out of time.
    #[error("gave up waiting after {waited:?}: {what}")]
    Timeout {
        /// What was waited for, and what was seen last.
        what: String,
        /// How long.
        waited: Duration,
    },
    /// A file of the course's (password, configuration, run log).
    #[error("{what}: {source}")]
    Io {
        /// Which file, doing what.
        what: String,
        /// The system's error.
        source: std::io::Error,
    },
}

impl QueueError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> QueueError {
        let what = what.into();
        move |source| QueueError::Io { what, source }
    }

    pub(crate) fn broker(error: impl std::fmt::Display) -> QueueError {
        QueueError::Broker(error.to_string())
    }
}
