//! The RPCs between a client and the manager, as a tarpc service, and the transport under them.
//!
//! Values travel as opaque bytes (JSON made by the typed proxies): the manager stores and hands
//! back what it is given without knowing its type, like Python's manager with pickles.
//! Refusals are a typed [`Refusal`]. Changing what travels here changes the protocol: bump the
//! version in [`MAGIC`](super::auth::MAGIC).

use serde::{Deserialize, Serialize};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio::net::TcpStream;

use super::QueueStats;

/// The largest frame either end accepts: a length prefix above it closes the connection
/// instead of making the reader allocate what the prefix claims.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// A task as it travels: [`super::Taken`] before the value is decoded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum WireTaken {
    Task {
        id: u64,
        value: Vec<u8>,
        attempt: u32,
    },
    Empty,
    Closed,
}

/// A map's entries as they travel: serialised keys and values, in insertion order.
pub(crate) type WireEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// Why the manager refused an operation. It crosses the network inside the RPC's answer, hence
/// serde; a client sees it in [`ClusterError::Refused`](super::ClusterError::Refused).
///
/// ```
/// use parcours_cluster::cluster::{ClusterError, Manager, ManagerConfig, Refusal, SharedKey};
/// let key = SharedKey::random();
/// let manager = Manager::start(ManagerConfig::new("127.0.0.1:0", key.clone())).unwrap();
/// let client = Manager::connect(&manager.address().to_string(), &key).unwrap();
/// let tasks = client.queue::<u8>("done");
/// tasks.close().unwrap();
/// match tasks.put(&1).unwrap_err() {
///     ClusterError::Refused { refusal: Refusal::QueueClosed { queue }, .. } => assert_eq!(queue, "done"),
///     other => panic!("{other}"),
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// An object name that is empty or longer than 200 bytes.
    #[error("object names have 1 to 200 bytes; {name:?} has {length}: give it a short name")]
    BadName {
        /// The name, cut to its first 40 characters.
        name: String,
        /// Its length in bytes.
        length: usize,
    },
    /// A put on a closed queue.
    #[error(
        "the queue {queue:?} is closed: it takes no more tasks (use another name for a new batch)"
    )]
    QueueClosed {
        /// The queue's name.
        queue: String,
    },
    /// An acknowledgement of a task the queue never had.
    #[error(
        "the queue {queue:?} never had a task {task}: acknowledge the id that `get` returned, \
         on the queue it came from"
    )]
    UnknownTask {
        /// The queue's name.
        queue: String,
        /// The id acknowledged.
        task: u64,
    },
    /// A call to a type the manager was not built with.
    #[error(
        "the manager has no type {type_name:?} (it has {registered:?}): register it with \
         ManagerConfig::register in the program that starts the manager"
    )]
    UnknownType {
        /// The type asked for.
        type_name: String,
        /// The types it has.
        registered: Vec<String>,
    },
    /// A call to an object under another type than the one it was made as.
    #[error("{object:?} is a {is}, not a {asked}: give each object a name of its own")]
    WrongType {
        /// The object's name.
        object: String,
        /// The type it was made as.
        is: String,
        /// The type the call asked for.
        asked: String,
    },
    /// A request that the object's type cannot read.
    #[error("{object:?} cannot serve the request: {reason}")]
    BadRequest {
        /// The object's name.
        object: String,
        /// Why.
        reason: String,
    },
    /// An addition that would take a counter beyond the range of `i64`.
    #[error("the counter {counter:?} would overflow: {value} + {delta}; it is left at {value}")]
    CounterOverflow {
        /// The counter's name.
        counter: String,
        /// Its value, unchanged.
        value: i64,
        /// The addition refused.
        delta: i64,
    },
}

#[tarpc::service]
pub(crate) trait ClusterRpc {
    async fn put(queue: String, items: Vec<Vec<u8>>) -> Result<Vec<u64>, Refusal>;
    async fn take(queue: String, wait_ms: u64, lease_ms: u64) -> Result<WireTaken, Refusal>;
    async fn ack(queue: String, task: u64) -> Result<bool, Refusal>;
    async fn close(queue: String) -> Result<(), Refusal>;
    async fn queue_stats(queue: String) -> Result<QueueStats, Refusal>;
    async fn wait_done(queue: String, wait_ms: u64) -> Result<QueueStats, Refusal>;
    async fn map_insert(map: String, key: Vec<u8>, value: Vec<u8>) -> Result<bool, Refusal>;
    async fn map_get(map: String, key: Vec<u8>) -> Result<Option<Vec<u8>>, Refusal>;
    async fn map_len(map: String) -> Result<u64, Refusal>;
    async fn map_entries(map: String) -> Result<WireEntries, Refusal>;
    async fn counter_add(counter: String, delta: i64) -> Result<i64, Refusal>;
    async fn call(type_name: String, object: String, request: Vec<u8>) -> Result<Vec<u8>, Refusal>;
    async fn shutdown();
}

/// Length-prefixed bincode frames on an authenticated socket, bounded by [`MAX_FRAME_BYTES`].
pub(crate) fn transport<Item, SinkItem>(
    stream: TcpStream,
) -> tarpc::serde_transport::Transport<TcpStream, Item, SinkItem, Bincode<Item, SinkItem>>
where
    Item: for<'de> Deserialize<'de>,
    SinkItem: Serialize,
{
    let frames = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec();
    tarpc::serde_transport::new(Framed::new(stream, frames), Bincode::default())
}
