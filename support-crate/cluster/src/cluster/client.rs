//! The client: one authenticated connection to a manager, and typed proxies to its objects.
//! Every call blocks (the tarpc client runs on the crate's runtime), so notebook cells need
//! no `async`; called from async code, a call waits on a thread of its own rather than make
//! tokio panic (see `block_on` in the module above).

use std::marker::PhantomData;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tarpc::client::RpcError;
use tarpc::context::Context;

use super::auth::{SharedKey, authenticate};
use super::protocol::{self, ClusterRpcClient, Refusal, WireTaken};
use super::registry::Shared;
use super::{ClusterError, MAX_WAIT, QueueStats, Taken, Task, block_on, runtime};

/// How long a call may take beyond the time it asked to wait.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the manager to accept the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A task not acknowledged within this time goes back to the queue (see [`QueueProxy::get_leased`]).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// A connection to a manager. Cloning it shares the connection; dropping the last clone
/// closes it, and the manager then puts back the tasks this client had leased.
#[derive(Clone, Debug)]
pub struct Client {
    rpc: ClusterRpcClient,
    address: Arc<str>,
}

impl Client {
    /// Connects to the manager at `address` and proves the key (see [`super::auth`]).
    ///
    /// # Errors
    /// [`ClusterError::Unreachable`] when no manager listens there, [`ClusterError::Rejected`]
    /// for a wrong key, [`ClusterError::Protocol`] when something else answers.
    pub fn connect(address: &str, key: &SharedKey) -> Result<Client, ClusterError> {
        let unreachable = |e: String| {
            ClusterError::Unreachable(format!(
                "no manager answers at {address}: {e} (is it started, and is the address the one it printed?)"
            ))
        };
        let candidates = address
            .to_socket_addrs()
            .map_err(|e| unreachable(e.to_string()))?;
        let mut last_error = "the address resolves to nothing".to_string();
        let mut stream = None;
        for candidate in candidates {
            match TcpStream::connect_timeout(&candidate, CONNECT_TIMEOUT) {
                Ok(connected) => {
                    stream = Some(connected);
                    break;
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        let mut stream = stream.ok_or_else(|| unreachable(last_error))?;
        authenticate(&mut stream, key, address)?;
        let setup = |e: std::io::Error| ClusterError::Disconnected(format!("{address}: {e}"));
        stream.set_nodelay(true).map_err(setup)?;
        stream.set_nonblocking(true).map_err(setup)?;
        let _context = runtime().enter();
        let stream = tokio::net::TcpStream::from_std(stream).map_err(setup)?;
        let rpc = ClusterRpcClient::new(Default::default(), protocol::transport(stream)).spawn();
        Ok(Client {
            rpc,
            address: address.into(),
        })
    }

    /// The manager's address, as given to [`Client::connect`].
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The task queue called `name` (created by its first put or close), holding values of
    /// type `T`.
    pub fn queue<T: Serialize + DeserializeOwned>(&self, name: &str) -> QueueProxy<T> {
        QueueProxy {
            client: self.clone(),
            name: name.to_string(),
            items: PhantomData,
        }
    }

    /// The result map called `name` (created by its first insert), from `K` to `V`.
    pub fn results<K, V>(&self, name: &str) -> MapProxy<K, V>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        MapProxy {
            client: self.clone(),
            name: name.to_string(),
            entries: PhantomData,
        }
    }

    /// The counter called `name` (created at 0 on first use).
    pub fn counter(&self, name: &str) -> CounterProxy {
        CounterProxy {
            client: self.clone(),
            name: name.to_string(),
        }
    }

    /// The object called `name`, of the type registered as `type_name` (made by its first
    /// call): see [`Shared`].
    pub fn object<T: Shared>(&self, type_name: &str, name: &str) -> ObjectProxy<T> {
        ObjectProxy {
            client: self.clone(),
            type_name: type_name.to_string(),
            name: name.to_string(),
            object: PhantomData,
        }
    }

    /// Asks the manager to stop: it closes every connection and its process exits.
    ///
    /// # Errors
    /// When the manager cannot be reached.
    pub fn shutdown_manager(&self) -> Result<(), ClusterError> {
        match self.call(Duration::ZERO, |rpc, context| async move {
            rpc.shutdown(context).await.map(Ok)
        }) {
            // Gone before its answer came back: stopped all the same.
            Ok(()) | Err(ClusterError::Disconnected(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Runs one RPC to completion on the runtime; `wait` is how long the manager may hold it
    /// before answering, on top of [`CALL_TIMEOUT`].
    fn call<R, F, Fut>(&self, wait: Duration, rpc: F) -> Result<R, ClusterError>
    where
        F: FnOnce(ClusterRpcClient, Context) -> Fut,
        Fut: Future<Output = Result<Result<R, Refusal>, RpcError>> + Send,
        R: Send,
    {
        let mut context = tarpc::context::current();
        context.deadline = Instant::now() + wait + CALL_TIMEOUT;
        match block_on(rpc(self.rpc.clone(), context)) {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(refusal)) => Err(ClusterError::Refused {
                address: self.address.to_string(),
                refusal,
            }),
            Err(RpcError::DeadlineExceeded) => Err(ClusterError::Disconnected(format!(
                "the manager at {} did not answer within {:?}: is it overloaded or stopped?",
                self.address,
                wait + CALL_TIMEOUT
            ))),
            Err(error) => Err(ClusterError::Disconnected(format!(
                "lost the connection to the manager at {} ({error}); connect again once it is back",
                self.address
            ))),
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ClusterError> {
    serde_json::to_vec(value)
        .map_err(|e| ClusterError::Encoding(format!("cannot serialise a value to JSON: {e}")))
}

fn decode<T: DeserializeOwned>(bytes: &[u8], object: &str) -> Result<T, ClusterError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ClusterError::Encoding(format!(
            "{object} holds {:?}, which is not a {}: {e} (do all clients use the same type for it?)",
            String::from_utf8_lossy(&bytes[..bytes.len().min(80)]),
            std::any::type_name::<T>()
        ))
    })
}

/// A proxy to a task queue of values of type `T`, with leases: a task taken by
/// [`get`](QueueProxy::get) goes back to the queue unless it is [`ack`](QueueProxy::ack)ed
/// before its lease expires, or if the connection that took it closes (its worker died).
///
/// ```
/// use std::time::Duration;
/// use parcours_cluster::cluster::{Manager, ManagerConfig, SharedKey, Taken};
/// let key = SharedKey::random();
/// let manager = Manager::start(ManagerConfig::new("127.0.0.1:0", key.clone())).unwrap();
/// let client = Manager::connect(&manager.address().to_string(), &key).unwrap();
/// let tasks = client.queue::<(u32, u32)>("tasks");
/// let ids = tasks.put_all(&[(1, 2), (3, 4)]).unwrap();
/// tasks.close().unwrap();
/// let first = tasks.get(Duration::from_secs(1)).unwrap().into_task().unwrap();
/// assert_eq!((first.id, first.value), (ids[0], (1, 2)));
/// assert!(tasks.ack(first.id).unwrap());
/// let second = tasks.get(Duration::from_secs(1)).unwrap().into_task().unwrap();
/// tasks.ack(second.id).unwrap();
/// // Closed, and nothing left pending or leased: workers may go home.
/// assert!(matches!(tasks.get(Duration::from_secs(1)).unwrap(), Taken::Closed));
/// ```
#[derive(Clone, Debug)]
pub struct QueueProxy<T> {
    client: Client,
    name: String,
    items: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a task; returns its id.
    ///
    /// # Errors
    /// When the queue is closed, or the manager cannot be reached.
    pub fn put(&self, task: &T) -> Result<u64, ClusterError> {
        Ok(self.put_all(std::slice::from_ref(task))?[0])
    }

    /// Adds tasks in one round trip; returns their ids, in order.
    ///
    /// # Errors
    /// When the queue is closed, or the manager cannot be reached.
    pub fn put_all(&self, tasks: &[T]) -> Result<Vec<u64>, ClusterError> {
        let items = tasks.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        let name = self.name.clone();
        self.client.call(Duration::ZERO, |rpc, context| async move {
            rpc.put(context, name, items).await
        })
    }

    /// Takes the next task, waiting up to `wait` (at most a minute) for one, with a lease of
    /// [`DEFAULT_LEASE`].
    ///
    /// # Errors
    /// When the manager cannot be reached, or the task is not a `T`.
    pub fn get(&self, wait: Duration) -> Result<Taken<T>, ClusterError> {
        self.get_leased(wait, DEFAULT_LEASE)
    }

    /// Takes the next task with a lease of `lease`: unless acknowledged within it, the task
    /// goes back to the queue for another worker.
    ///
    /// # Errors
    /// When the manager cannot be reached, or the task is not a `T`.
    pub fn get_leased(&self, wait: Duration, lease: Duration) -> Result<Taken<T>, ClusterError> {
        let name = self.name.clone();
        let wait_ms = wait.as_millis().min(u64::MAX as u128) as u64;
        let lease_ms = lease.as_millis().min(u64::MAX as u128) as u64;
        let taken = self.client.call(wait, |rpc, context| async move {
            rpc.take(context, name, wait_ms, lease_ms).await
        })?;
        Ok(match taken {
            WireTaken::Task { id, value, attempt } => Taken::Task(Task {
                id,
                value: decode(&value, &format!("the queue {:?}", self.name))?,
                attempt,
            }),
            WireTaken::Empty => Taken::Empty,
            WireTaken::Closed => Taken::Closed,
        })
    }

    /// Marks a task done. Returns `false` if it already was (a duplicate, say from a worker
    /// whose lease had expired): only the first acknowledgement counts.
    ///
    /// # Errors
    /// When the queue never had such a task, or the manager cannot be reached.
    pub fn ack(&self, id: u64) -> Result<bool, ClusterError> {
        let name = self.name.clone();
        self.client.call(Duration::ZERO, |rpc, context| async move {
            rpc.ack(context, name, id).await
        })
    }

    /// Closes the queue: no more tasks may be put, and once the last one is acknowledged,
    /// [`get`](QueueProxy::get) answers [`Taken::Closed`] so workers know to stop.
    ///
    /// # Errors
    /// When the manager cannot be reached.
    pub fn close(&self) -> Result<(), ClusterError> {
        let name = self.name.clone();
        self.client.call(Duration::ZERO, |rpc, context| async move {
            rpc.close(context, name).await
        })
    }

    /// Waits until every task put so far is acknowledged, like Python's `Queue.join`; returns
    /// `false` if `timeout` passed first.
    ///
    /// # Errors
    /// When the manager cannot be reached.
    pub fn join(&self, timeout: Duration) -> Result<bool, ClusterError> {
        let deadline = Instant::now() + timeout;
        loop {
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(MAX_WAIT);
            let wait_ms = wait.as_millis() as u64;
            let name = self.name.clone();
            let stats = self.client.call(wait, |rpc, context| async move {
                rpc.wait_done(context, name, wait_ms).await
            })?;
            if stats.is_done() {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// How many tasks are pending, leased, acknowledged and returned.
    ///
    /// # Errors
    /// When the manager cannot be reached.
    pub fn stats(&self) -> Result<QueueStats, ClusterError> {
        let name = self.name.clone();
        self.client.call(Duration::ZERO, |rpc, context| async move {
            rpc.queue_stats(context, name).await
        })
    }
}

/// A proxy to a result map from `K` to `V`. Inserting is idempotent: the first value for a key
/// stays, and a duplicate (a task computed twice because its first worker died after sending
/// its result) is ignored, so nothing is counted twice.
///
/// ```
/// use parcours_cluster::cluster::{Manager, ManagerConfig, SharedKey};
/// let key = SharedKey::random();
/// let manager = Manager::start(ManagerConfig::new("127.0.0.1:0", key.clone())).unwrap();
/// let client = Manager::connect(&manager.address().to_string(), &key).unwrap();
/// let squares = client.results::<u64, u64>("squares");
/// assert!(squares.insert(&3, &9).unwrap());
/// assert!(!squares.insert(&3, &9).unwrap(), "a duplicate is not counted");
/// assert_eq!(squares.get(&3).unwrap(), Some(9));
/// assert_eq!(squares.entries().unwrap(), vec![(3, 9)]);
/// ```
#[derive(Clone, Debug)]
pub struct MapProxy<K, V> {
    client: Client,
    name: String,
    entries: PhantomData<fn() -> (K, V)>,
}

impl<K, V> MapProxy<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Inserts `value` under `key` unless the key is there already; returns whether it was new.
    ///
    /// # Errors
    /// When the manager cannot be reached.
    pub fn insert(&self, key: &K, value: &V) -> Result<bool, ClusterError> {
        let (name, key, value) = (self.name.clone(), encode(key)?, encode(value)?);
        self.client.call(Duration::ZERO, |rpc, context| async move {
            rpc.map_insert(context, name, key, value).await
        })
    }

    /// The value under `key`, if any.
    ///
    /// # Errors
    /// When the manager cannot be reached, or the value is not a `V`.
    pub fn get(&self, key: &K) -> Result<Option<V>, ClusterError> {
        let (name, key) = (self.name.clone(), encode(key)?);
        let value = self
            .client
            .call(Duration::ZERO, |rpc, context| async move {
                rpc.map_get(context, name, key).await
            })?;
        value
            .map(|bytes| decode(&bytes, &format!("the map {:?}", self.name)))
            .transpose()
    }

    /// The number of entries.
    ///
    /// # Errors
    /// When the manager cannot be reached.
    pub fn len(&self) -> Result<usize, ClusterError> {
        let name = self.name.clone();
        let len = self
            .client
            .call(Duration::ZERO, |rpc, context| async move {
                rpc.map_len(context, name).await
            })?;
        Ok(len as usize)
    }

    /// Whether the map has no entries.
    ///
    /// # Errors
    /// When the manager cannot be reached.
    pub fn is_empty(&self) -> Result<bool, ClusterError> {
        Ok(self.len()? == 0)
    }

    /// Every entry, in the order they were first inserted.
    ///
    /// # Errors
    /// When the manager cannot be reached, or an entry is not a `(K, V)`.
    pub fn entries(&self) -> Result<Vec<(K, V)>, ClusterError> {
        let name = self.name.clone();
        let entries = self
            .client
            .call(Duration::ZERO, |rpc, context| async move {
                rpc.map_entries(context, name).await
            })?;
        let object = format!("the map {:?}", self.name);
        entries
            .iter()
            .map(|(key, value)| Ok((decode(key, &object)?, decode(value, &object)?)))
            .collect()
    }
}

/// A proxy to a shared counter.
#[derive(Clone, Debug)]
pub struct CounterProxy {
    client: Client,
    name: String,
}

impl CounterProxy {
    /// Adds `delta` (negative to subtract); returns the new value.
    ///
    /// # Errors
    /// On overflow, or when the manager cannot be reached.
    pub fn add(&self, delta: i64) -> Result<i64, ClusterError> {
        let name = self.name.clone();
        self.client.call(Duration::ZERO, |rpc, context| async move {
            rpc.counter_add(context, name, delta).await
        })
    }

    /// The current value.
    ///
    /// # Errors
    /// When the manager cannot be reached.
    pub fn get(&self) -> Result<i64, ClusterError> {
        self.add(0)
    }
}

/// A proxy to an object of a type of your own, held by the manager (see [`Shared`]).
#[derive(Debug)]
pub struct ObjectProxy<T> {
    client: Client,
    type_name: String,
    name: String,
    object: PhantomData<fn() -> T>,
}

impl<T> Clone for ObjectProxy<T> {
    fn clone(&self) -> Self {
        ObjectProxy {
            client: self.client.clone(),
            type_name: self.type_name.clone(),
            name: self.name.clone(),
            object: PhantomData,
        }
    }
}

impl<T: Shared> ObjectProxy<T> {
    /// Sends `request` to the object, which the manager serves, and returns its reply.
    ///
    /// # Errors
    /// A [`Refusal`] when the manager has no such type or the name holds another type, or
    /// when the manager cannot be reached.
    pub fn call(&self, request: &T::Request) -> Result<T::Reply, ClusterError> {
        let (type_name, name) = (self.type_name.clone(), self.name.clone());
        let request = encode(request)?;
        let reply = self
            .client
            .call(Duration::ZERO, |rpc, context| async move {
                rpc.call(context, type_name, name, request).await
            })?;
        decode(&reply, &self.name)
    }
}
