//! The manager: the process that holds the named objects and serves them over tarpc.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::{Either, select};
use tarpc::context::Context;
use tarpc::server::{BaseChannel, Channel};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use super::auth::{self, ANSWER_LEN, HANDSHAKE_TIMEOUT, REJECTED, SharedKey};
use super::protocol::{self, ClusterRpc, Refusal, WireEntries, WireTaken};
use super::registry::{Object, Registry, Shared as SharedType};
use super::{ClusterError, QueueStats, block_on, runtime};

/// The longest a `get` may wait on the manager: longer waits are made of several calls.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// The longest lease: a task not acknowledged by then goes back to the queue.
pub const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);
/// Failed handshakes logged to stderr before the manager stops saying so: a stream of garbage
/// must not become a stream of log lines.
const LOGGED_REFUSALS: u64 = 10;

/// Where and how a manager listens.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// The address to listen on; port 0 picks a free one.
    pub bind: String,
    /// The key clients must prove they know.
    pub key: SharedKey,
    /// Whether `bind` may be an address other than loopback. The handshake authenticates the
    /// clients but nothing is encrypted after it: allow it on a network you trust only, or
    /// reach the manager through an SSH tunnel or WireGuard.
    pub allow_remote: bool,
    /// The types of your own it serves (see [`ManagerConfig::register`]).
    types: Registry,
}

impl ManagerConfig {
    /// A loopback-only configuration.
    pub fn new(bind: &str, key: SharedKey) -> Self {
        ManagerConfig {
            bind: bind.to_string(),
            key,
            allow_remote: false,
            types: Registry::default(),
        }
    }

    /// Adds a type of your own, served under `type_name` to proxies made by
    /// [`Client::object`](super::Client::object): the counterpart of Python's
    /// `BaseManager.register` (see [`Shared`](super::Shared)).
    pub fn register<T: SharedType>(mut self, type_name: &str) -> Self {
        self.types.register::<T>(type_name);
        self
    }

    /// The addresses `bind` names; refuses a non-loopback one without `allow_remote`.
    ///
    /// ```
    /// use parcours_cluster::cluster::{ManagerConfig, SharedKey};
    /// let mut config = ManagerConfig::new("0.0.0.0:0", SharedKey::random());
    /// assert!(config.check().unwrap_err().to_string().contains("allow_remote"));
    /// config.allow_remote = true;
    /// assert!(config.check().is_ok());
    /// ```
    ///
    /// # Errors
    /// [`ClusterError::Config`], saying what to change.
    pub fn check(&self) -> Result<Vec<SocketAddr>, ClusterError> {
        let addresses: Vec<SocketAddr> = self
            .bind
            .to_socket_addrs()
            .map_err(|e| ClusterError::Config(format!("{:?} is not an address: {e}", self.bind)))?
            .collect();
        if !self.allow_remote && addresses.iter().any(|a| !a.ip().is_loopback()) {
            return Err(ClusterError::Config(format!(
                "{:?} is not a loopback address: a manager reachable from the network must be asked \
                 for explicitly (allow_remote, or --allow-remote for parcours-manager), and only on \
                 a network you trust: its messages are authenticated, not encrypted",
                self.bind
            )));
        }
        Ok(addresses)
    }
}

/// A running manager. It serves on the crate's runtime threads until [`Manager::stop`], a
/// client's [`shutdown_manager`](super::Client::shutdown_manager), or its drop.
///
/// ```
/// use parcours_cluster::cluster::{Manager, ManagerConfig, SharedKey};
/// let key = SharedKey::random();
/// let manager = Manager::start(ManagerConfig::new("127.0.0.1:0", key.clone())).unwrap();
/// let client = Manager::connect(&manager.address().to_string(), &key).unwrap();
/// assert_eq!(client.counter("visits").add(2).unwrap(), 2);
/// ```
#[derive(Debug)]
pub struct Manager {
    address: SocketAddr,
    shared: Arc<Shared>,
}

impl Manager {
    /// Binds and starts serving in the background.
    ///
    /// # Errors
    /// A refused configuration, or an address that cannot be bound (say, in use).
    pub fn start(config: ManagerConfig) -> Result<Manager, ClusterError> {
        let addresses = config.check()?;
        let listener = std::net::TcpListener::bind(&addresses[..])
            .map_err(|e| ClusterError::Config(format!("cannot listen on {}: {e}", config.bind)))?;
        let address = listener
            .local_addr()
            .map_err(|e| ClusterError::Config(e.to_string()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ClusterError::Config(e.to_string()))?;
        let _context = runtime().enter();
        let listener =
            TcpListener::from_std(listener).map_err(|e| ClusterError::Config(e.to_string()))?;
        let shared = Arc::new(Shared::new(config.key, config.types));
        runtime().spawn(accept_connections(listener, Arc::clone(&shared)));
        Ok(Manager { address, shared })
    }

    /// The address it listens on (with the port picked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Blocks until the manager is asked to stop.
    pub fn wait(&self) {
        let mut stopped = self.shared.stop.subscribe();
        block_on(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
    }

    /// Stops accepting and closes every connection.
    pub fn stop(&self) {
        self.shared.stop.send_replace(true);
    }

    /// Connects to the manager at `address`: the same as [`Client::connect`](super::Client::connect),
    /// named as in Python's `BaseManager.connect`.
    ///
    /// # Errors
    /// See [`Client::connect`](super::Client::connect).
    pub fn connect(address: &str, key: &SharedKey) -> Result<super::Client, ClusterError> {
        super::Client::connect(address, key)
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What every connection of one manager shares.
#[derive(Debug)]
struct Shared {
    objects: Mutex<Objects>,
    /// Woken on every change a waiting `get` may care about.
    changed: Notify,
    stop: watch::Sender<bool>,
    key: SharedKey,
    types: Registry,
    connections: AtomicU64,
    refusals: AtomicU64,
}

impl Shared {
    fn new(key: SharedKey, types: Registry) -> Self {
        Shared {
            objects: Mutex::new(Objects::default()),
            changed: Notify::new(),
            stop: watch::channel(false).0,
            key,
            types,
            connections: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
        }
    }

    /// Puts the expired leases of `tasks` back in the queue, and wakes every waiting `get` if
    /// any came back.
    ///
    /// Even when the caller is about to take the one task that came back: a waiter that finds
    /// nothing just waits again, while a missed wake-up leaves a task idle until that waiter's
    /// own timer fires. Waking for every return is the rule that needs no counting.
    fn return_expired(&self, tasks: &mut TaskQueue, now: Instant) {
        if tasks.expire_leases(now) > 0 {
            self.changed.notify_waiters();
        }
    }

    fn objects(&self) -> MutexGuard<'_, Objects> {
        // No code path panics while holding the lock; if one ever did, the objects are
        // still consistent enough to keep serving.
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log_refusal(&self, peer: SocketAddr, reason: &str) {
        let count = self.refusals.fetch_add(1, Ordering::Relaxed) + 1;
        if count <= LOGGED_REFUSALS {
            eprintln!("parcours-manager: refused a connection from {peer}: {reason}");
        }
        if count == LOGGED_REFUSALS {
            eprintln!("parcours-manager: further refused connections are not logged");
        }
    }
}

/// The named objects. A name is created by the first operation that writes to it (a put, a
/// close, an insert, a counter's add); reading or acknowledging never creates one.
#[derive(Debug, Default)]
struct Objects {
    queues: HashMap<String, TaskQueue>,
    maps: HashMap<String, ResultMap>,
    counters: HashMap<String, i64>,
    /// Objects of registered types, with the name of their type.
    registered: HashMap<String, (String, Registered)>,
    /// Authenticated connections still open: a lease is only granted to one of them.
    live: HashSet<u64>,
}

struct Registered(Box<dyn Object>);

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registered")
    }
}

#[derive(Debug, Default)]
struct TaskQueue {
    next_id: u64,
    pending: VecDeque<Pending>,
    leased: HashMap<u64, Lease>,
    acked: HashSet<u64>,
    closed: bool,
    /// Leases that came back: expired, or their worker's connection closed.
    returned: u64,
}

#[derive(Debug)]
struct Pending {
    id: u64,
    value: Vec<u8>,
    attempt: u32,
}

#[derive(Debug)]
struct Lease {
    value: Vec<u8>,
    attempt: u32,
    connection: u64,
    expires: Instant,
}

impl TaskQueue {
    /// Puts the leases that expire at `now` or before back at the front of the queue; returns
    /// how many.
    fn expire_leases(&mut self, now: Instant) -> usize {
        self.return_leases(|lease| lease.expires <= now)
    }

    fn return_leases(&mut self, which: impl Fn(&Lease) -> bool) -> usize {
        let mut ids: Vec<u64> = self
            .leased
            .iter()
            .filter(|(_, lease)| which(lease))
            .map(|(id, _)| *id)
            .collect();
        // Oldest first at the front, so tasks keep roughly their order.
        ids.sort_unstable_by(|a, b| b.cmp(a));
        for id in &ids {
            let lease = self.leased.remove(id).expect("listed above");
            self.pending.push_front(Pending {
                id: *id,
                value: lease.value,
                attempt: lease.attempt,
            });
        }
        self.returned += ids.len() as u64;
        ids.len()
    }

    fn stats(&self) -> QueueStats {
        QueueStats {
            pending: self.pending.len() as u64,
            leased: self.leased.len() as u64,
            acked: self.acked.len() as u64,
            returned: self.returned,
            closed: self.closed,
        }
    }
}

/// Entries in insertion order, with an index by key.
#[derive(Debug, Default)]
struct ResultMap {
    index: HashMap<Vec<u8>, usize>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

fn check_name(name: &str) -> Result<(), Refusal> {
    if name.is_empty() || name.len() > 200 {
        return Err(Refusal::BadName {
            name: name.chars().take(40).collect(),
            length: name.len(),
        });
    }
    Ok(())
}

async fn accept_connections(listener: TcpListener, shared: Arc<Shared>) {
    let mut stop = shared.stop.subscribe();
    loop {
        let accepted = {
            let accept = std::pin::pin!(listener.accept());
            let stopped = std::pin::pin!(stop.wait_for(|stop| *stop));
            match select(accept, stopped).await {
                Either::Left((accepted, _)) => accepted,
                Either::Right(_) => return,
            }
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(serve_connection(stream, peer, Arc::clone(&shared)));
            }
            Err(error) => {
                // Out of file descriptors, most likely: wait for some to close.
                eprintln!("parcours-manager: cannot accept a connection: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let verdict =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut stream, &shared.key)).await;
    match verdict {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => return shared.log_refusal(peer, reason),
        Err(_) => return shared.log_refusal(peer, "no answer to the challenge in time"),
    }
    let connection = shared.connections.fetch_add(1, Ordering::Relaxed);
    shared.objects().live.insert(connection);
    let service = Service {
        shared: Arc::clone(&shared),
        connection,
    };
    let requests = BaseChannel::with_defaults(protocol::transport(stream))
        .execute(service.serve())
        .for_each(|response| async move {
            tokio::spawn(response);
        });
    let mut stop = shared.stop.subscribe();
    let stopped = std::pin::pin!(stop.wait_for(|stop| *stop));
    // Ends when the client closes, sends garbage (the channel stops at the first bad frame), or
    // the manager stops.
    select(std::pin::pin!(requests), stopped).await;
    let mut objects = shared.objects();
    objects.live.remove(&connection);
    let returned: usize = objects
        .queues
        .values_mut()
        .map(|queue| queue.return_leases(|lease| lease.connection == connection))
        .sum();
    drop(objects);
    if returned > 0 {
        shared.changed.notify_waiters();
    }
}

/// The manager's side of the handshake described in [`auth`].
async fn handshake(stream: &mut TcpStream, key: &SharedKey) -> Result<(), &'static str> {
    let (challenge, nonce) = auth::challenge();
    stream
        .write_all(&challenge)
        .await
        .map_err(|_| "closed before the challenge")?;
    let mut answer = [0u8; ANSWER_LEN];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(|_| "closed or truncated its answer to the challenge")?;
    match auth::check_answer(key, &nonce, &answer) {
        Some(reply) => stream
            .write_all(&reply)
            .await
            .map_err(|_| "closed before the reply"),
        None => {
            let _ = stream.write_all(&[REJECTED]).await;
            Err("wrong key")
        }
    }
}

/// One connection's view of the manager: tarpc clones it for every request.
#[derive(Clone)]
struct Service {
    shared: Arc<Shared>,
    connection: u64,
}

impl ClusterRpc for Service {
    async fn put(
        self,
        _: Context,
        queue: String,
        items: Vec<Vec<u8>>,
    ) -> Result<Vec<u64>, Refusal> {
        check_name(&queue)?;
        let mut objects = self.shared.objects();
        let tasks = objects.queues.entry(queue.clone()).or_default();
        if tasks.closed {
            return Err(Refusal::QueueClosed { queue });
        }
        let ids = items
            .into_iter()
            .map(|value| {
                let id = tasks.next_id;
                tasks.next_id += 1;
                tasks.pending.push_back(Pending {
                    id,
                    value,
                    attempt: 0,
                });
                id
            })
            .collect();
        drop(objects);
        self.shared.changed.notify_waiters();
        Ok(ids)
    }

    async fn take(
        self,
        _: Context,
        queue: String,
        wait_ms: u64,
        lease_ms: u64,
    ) -> Result<WireTaken, Refusal> {
        check_name(&queue)?;
        let lease = Duration::from_millis(lease_ms).clamp(Duration::from_millis(1), MAX_LEASE);
        let give_up = Instant::now() + Duration::from_millis(wait_ms).min(MAX_WAIT);
        loop {
            // Registered before looking, so a change between the look and the wait wakes us.
            let mut changed = std::pin::pin!(self.shared.changed.notified());
            changed.as_mut().enable();
            let now = Instant::now();
            let next_expiry = {
                let mut objects = self.shared.objects();
                // A connection closed while its request waited: no lease for it.
                if !objects.live.contains(&self.connection) {
                    return Ok(WireTaken::Empty);
                }
                // No such queue yet: wait for its first task.
                if let Some(tasks) = objects.queues.get_mut(&queue) {
                    self.shared.return_expired(tasks, now);
                    if let Some(task) = tasks.pending.pop_front() {
                        let attempt = task.attempt + 1;
                        tasks.leased.insert(
                            task.id,
                            Lease {
                                value: task.value.clone(),
                                attempt,
                                connection: self.connection,
                                expires: now + lease,
                            },
                        );
                        return Ok(WireTaken::Task {
                            id: task.id,
                            value: task.value,
                            attempt,
                        });
                    }
                    if tasks.closed && tasks.leased.is_empty() {
                        return Ok(WireTaken::Closed);
                    }
                    tasks.leased.values().map(|lease| lease.expires).min()
                } else {
                    None
                }
            };
            if now >= give_up {
                return Ok(WireTaken::Empty);
            }
            let until = next_expiry.map_or(give_up, |expiry| expiry.min(give_up));
            let _ = tokio::time::timeout_at(until.into(), changed).await;
        }
    }

    async fn ack(self, _: Context, queue: String, task: u64) -> Result<bool, Refusal> {
        check_name(&queue)?;
        let mut objects = self.shared.objects();
        // `get_mut`, not `entry`: an acknowledgement on a name never used is a mistake to
        // report, not a queue to create.
        let Some(tasks) = objects
            .queues
            .get_mut(&queue)
            .filter(|tasks| task < tasks.next_id)
        else {
            return Err(Refusal::UnknownTask { queue, task });
        };
        let first = if tasks.leased.remove(&task).is_some() {
            true
        } else if let Some(position) = tasks.pending.iter().position(|p| p.id == task) {
            // Its lease had expired and it was waiting for another worker: it is done now.
            tasks.pending.remove(position);
            true
        } else {
            false
        };
        if first {
            tasks.acked.insert(task);
        }
        drop(objects);
        self.shared.changed.notify_waiters();
        Ok(first)
    }

    async fn close(self, _: Context, queue: String) -> Result<(), Refusal> {
        check_name(&queue)?;
        self.shared
            .objects()
            .queues
            .entry(queue)
            .or_default()
            .closed = true;
        self.shared.changed.notify_waiters();
        Ok(())
    }

    async fn queue_stats(self, _: Context, queue: String) -> Result<QueueStats, Refusal> {
        check_name(&queue)?;
        let mut objects = self.shared.objects();
        Ok(match objects.queues.get_mut(&queue) {
            Some(tasks) => {
                self.shared.return_expired(tasks, Instant::now());
                tasks.stats()
            }
            None => QueueStats::default(),
        })
    }

    async fn wait_done(
        self,
        _: Context,
        queue: String,
        wait_ms: u64,
    ) -> Result<QueueStats, Refusal> {
        check_name(&queue)?;
        let give_up = Instant::now() + Duration::from_millis(wait_ms).min(MAX_WAIT);
        loop {
            let mut changed = std::pin::pin!(self.shared.changed.notified());
            changed.as_mut().enable();
            let now = Instant::now();
            let (stats, next_expiry) = {
                let mut objects = self.shared.objects();
                match objects.queues.get_mut(&queue) {
                    Some(tasks) => {
                        self.shared.return_expired(tasks, now);
                        let next_expiry = tasks.leased.values().map(|lease| lease.expires).min();
                        (tasks.stats(), next_expiry)
                    }
                    None => (QueueStats::default(), None),
                }
            };
            if stats.is_done() || now >= give_up {
                return Ok(stats);
            }
            let until = next_expiry.map_or(give_up, |expiry| expiry.min(give_up));
            let _ = tokio::time::timeout_at(until.into(), changed).await;
        }
    }

    async fn map_insert(
        self,
        _: Context,
        map: String,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<bool, Refusal> {
        check_name(&map)?;
        let mut objects = self.shared.objects();
        let map = objects.maps.entry(map).or_default();
        if map.index.contains_key(&key) {
            return Ok(false);
        }
        map.index.insert(key.clone(), map.entries.len());
        map.entries.push((key, value));
        Ok(true)
    }

    async fn map_get(
        self,
        _: Context,
        map: String,
        key: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, Refusal> {
        check_name(&map)?;
        let objects = self.shared.objects();
        Ok(objects
            .maps
            .get(&map)
            .and_then(|map| map.index.get(&key).map(|&i| map.entries[i].1.clone())))
    }

    async fn map_len(self, _: Context, map: String) -> Result<u64, Refusal> {
        check_name(&map)?;
        Ok(self
            .shared
            .objects()
            .maps
            .get(&map)
            .map_or(0, |map| map.entries.len() as u64))
    }

    async fn map_entries(self, _: Context, map: String) -> Result<WireEntries, Refusal> {
        check_name(&map)?;
        Ok(self
            .shared
            .objects()
            .maps
            .get(&map)
            .map_or_else(Vec::new, |map| map.entries.clone()))
    }

    async fn counter_add(self, _: Context, counter: String, delta: i64) -> Result<i64, Refusal> {
        check_name(&counter)?;
        let mut objects = self.shared.objects();
        let value = objects.counters.entry(counter.clone()).or_default();
        *value = value.checked_add(delta).ok_or(Refusal::CounterOverflow {
            counter,
            value: *value,
            delta,
        })?;
        Ok(*value)
    }

    async fn call(
        self,
        _: Context,
        type_name: String,
        object: String,
        request: Vec<u8>,
    ) -> Result<Vec<u8>, Refusal> {
        check_name(&object)?;
        let mut objects = self.shared.objects();
        let (is, held) = match objects.registered.entry(object.clone()) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let made =
                    self.shared
                        .types
                        .make(&type_name)
                        .ok_or_else(|| Refusal::UnknownType {
                            type_name: type_name.clone(),
                            registered: self.shared.types.names(),
                        })?;
                entry.insert((type_name.clone(), Registered(made)))
            }
        };
        if *is != type_name {
            return Err(Refusal::WrongType {
                object,
                is: is.clone(),
                asked: type_name,
            });
        }
        // Under the objects' lock: one call at a time, whatever the connections.
        held.0
            .call(&request)
            .map_err(|reason| Refusal::BadRequest { object, reason })
    }

    async fn shutdown(self, _: Context) {
        // A moment's delay, so that this answer still reaches the client.
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            shared.stop.send_replace(true);
        });
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use crate::cluster::{Client, Taken};

    fn manager_and_client() -> (Manager, Client) {
        let key = SharedKey::random();
        let manager = Manager::start(ManagerConfig::new("127.0.0.1:0", key.clone())).unwrap();
        let client = Client::connect(&manager.address().to_string(), &key).unwrap();
        (manager, client)
    }

    #[test]
    fn an_unacknowledged_task_comes_back_when_its_lease_expires() {
        let (_manager, client) = manager_and_client();
        let tasks = client.queue::<String>("leases");
        let id = tasks.put(&"slow".to_string()).unwrap();
        let first = tasks
            .get_leased(Duration::ZERO, Duration::from_millis(100))
            .unwrap()
            .into_task()
            .unwrap();
        assert_eq!((first.id, first.attempt), (id, 1));
        // Nothing else to take until the lease expires: then the same task, a second attempt.
        let started = Instant::now();
        let second = tasks
            .get(Duration::from_secs(5))
            .unwrap()
            .into_task()
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!((second.id, second.attempt), (id, 2));
        assert_eq!(tasks.stats().unwrap().returned, 1);
        // Both workers finish: only the first acknowledgement counts.
        assert!(tasks.ack(id).unwrap());
        assert!(!tasks.ack(id).unwrap());
        assert_eq!(tasks.stats().unwrap().acked, 1);
    }

    #[test]
    fn a_get_waits_then_answers_empty() {
        let (_manager, client) = manager_and_client();
        let started = Instant::now();
        let taken = client
            .queue::<u8>("idle")
            .get(Duration::from_millis(200))
            .unwrap();
        assert_eq!(taken, Taken::Empty);
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    #[test]
    fn a_waiting_get_wakes_up_for_a_new_task() {
        let (_manager, client) = manager_and_client();
        let producer = client.clone();
        let putter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            producer.queue::<u8>("wake").put(&7).unwrap()
        });
        let started = Instant::now();
        let task = client
            .queue::<u8>("wake")
            .get(Duration::from_secs(20))
            .unwrap();
        assert_eq!(task.into_task().unwrap().value, 7);
        assert!(started.elapsed() < Duration::from_secs(5));
        putter.join().unwrap();
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let (_manager, client) = manager_and_client();
        let tasks = client.queue::<u8>("finished");
        tasks.close().unwrap();
        let closed = tasks.put(&1).unwrap_err().to_string();
        assert!(closed.contains("is closed"), "{closed}");
        let unknown = tasks.ack(99).unwrap_err().to_string();
        assert!(unknown.contains("never had a task 99"), "{unknown}");
        let nameless = client.counter("").get().unwrap_err().to_string();
        assert!(nameless.contains("1 to 200 bytes"), "{nameless}");
        // A value of another type than the proxy's says so.
        client
            .results::<u8, String>("typed")
            .insert(&1, &"one".into())
            .unwrap();
        let mistyped = client.results::<u8, u64>("typed").get(&1).unwrap_err();
        assert!(matches!(mistyped, ClusterError::Encoding(_)), "{mistyped}");
    }

    #[test]
    fn an_ack_checks_the_name_and_creates_no_queue() {
        let (manager, client) = manager_and_client();
        let nameless = client.queue::<u8>("").ack(0).unwrap_err();
        assert!(
            matches!(
                &nameless,
                ClusterError::Refused {
                    refusal: Refusal::BadName { length: 0, .. },
                    ..
                }
            ),
            "{nameless:?}"
        );
        let never_used = client.queue::<u8>("never used");
        let unknown = never_used.ack(0).unwrap_err();
        assert!(
            matches!(
                &unknown,
                ClusterError::Refused {
                    refusal: Refusal::UnknownTask { queue, task: 0 },
                    ..
                } if queue == "never used"
            ),
            "{unknown:?}"
        );
        assert!(
            unknown
                .to_string()
                .contains("acknowledge the id that `get` returned")
        );
        // Reading a queue creates nothing either.
        assert_eq!(never_used.stats().unwrap(), QueueStats::default());
        assert!(never_used.join(Duration::ZERO).unwrap());
        assert_eq!(never_used.get(Duration::ZERO).unwrap(), Taken::Empty);
        assert!(manager.shared.objects().queues.is_empty());
        // A put does.
        never_used.put(&1).unwrap();
        assert!(manager.shared.objects().queues.contains_key("never used"));
        assert!(never_used.ack(0).unwrap());
    }

    #[test]
    fn a_lease_comes_back_at_its_expiry_and_wakes_the_waiting_gets_even_alone() {
        let shared = Shared::new(SharedKey::random(), Registry::default());
        let mut tasks = TaskQueue {
            next_id: 1,
            ..TaskQueue::default()
        };
        let expires = Instant::now() + Duration::from_secs(60);
        let lease = Lease {
            value: b"7".to_vec(),
            attempt: 1,
            connection: 0,
            expires,
        };
        tasks.leased.insert(0, lease);
        let mut waiting = std::pin::pin!(shared.changed.notified());
        waiting.as_mut().enable();
        // A nanosecond before its expiry: still leased, and nobody is woken.
        shared.return_expired(&mut tasks, expires - Duration::from_nanos(1));
        assert_eq!((tasks.stats().leased, tasks.stats().pending), (1, 0));
        assert!(waiting.as_mut().now_or_never().is_none());
        // At its expiry: back in the queue, and a single returned task wakes the waiters.
        shared.return_expired(&mut tasks, expires);
        let stats = tasks.stats();
        assert_eq!((stats.leased, stats.pending, stats.returned), (0, 1, 1));
        assert!(
            waiting.now_or_never().is_some(),
            "the waiting gets were not woken"
        );
    }

    #[test]
    fn a_counter_refuses_to_overflow_and_keeps_its_value() {
        let (_manager, client) = manager_and_client();
        let counter = client.counter("big");
        counter.add(i64::MAX).unwrap();
        let refused = counter.add(1).unwrap_err();
        assert!(
            matches!(
                refused,
                ClusterError::Refused {
                    refusal: Refusal::CounterOverflow {
                        value: i64::MAX,
                        delta: 1,
                        ..
                    },
                    ..
                }
            ),
            "{refused:?}"
        );
        assert_eq!(counter.get().unwrap(), i64::MAX);
    }

    #[test]
    fn a_stopped_manager_is_reported_as_gone() {
        let (manager, client) = manager_and_client();
        client.shutdown_manager().unwrap();
        manager.wait();
        let gone = client.counter("after").get().unwrap_err();
        assert!(matches!(gone, ClusterError::Disconnected(_)), "{gone:?}");
        let address = manager.address().to_string();
        let refused = Client::connect(&address, &SharedKey::random()).unwrap_err();
        assert!(
            matches!(refused, ClusterError::Unreachable(_)),
            "{refused:?}"
        );
    }
}
