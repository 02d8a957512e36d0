//! The RPCs between a client and the manager, as a tarpc service, and the transport under them.
//!
//! Values travel as opaque bytes (JSON made by the typed proxies): the manager stores and hands
//! back what it is given without knowing its type, like Python's manager with pickles.

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

// The errors are the manager's messages, shown to the caller as they are.
#[tarpc::service]
pub(crate) trait ClusterRpc {
    async fn put(queue: String, items: Vec<Vec<u8>>) -> Result<Vec<u64>, String>;
    async fn take(queue: String, wait_ms: u64, lease_ms: u64) -> Result<WireTaken, String>;
    async fn ack(queue: String, task: u64) -> Result<bool, String>;
    async fn close(queue: String) -> Result<(), String>;
    async fn queue_stats(queue: String) -> Result<QueueStats, String>;
    async fn wait_done(queue: String, wait_ms: u64) -> Result<QueueStats, String>;
    async fn map_insert(map: String, key: Vec<u8>, value: Vec<u8>) -> Result<bool, String>;
    async fn map_get(map: String, key: Vec<u8>) -> Result<Option<Vec<u8>>, String>;
    async fn map_len(map: String) -> Result<u64, String>;
    async fn map_entries(map: String) -> Result<WireEntries, String>;
    async fn counter_add(counter: String, delta: i64) -> Result<i64, String>;
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
