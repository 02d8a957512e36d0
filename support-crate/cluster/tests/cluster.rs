//! The cluster's reliability, with real processes: the manager and worker binaries of this
//! crate, started through `LocalCluster`. Every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use parcours_cluster::cluster::{
    ClusterBinaries, ClusterError, LocalCluster, MAX_FRAME_BYTES, Manager, ManagerConfig,
    PrimeCount, PrimeRange, Refusal, SharedKey, Taken, WorkerOptions, authenticate,
};

#[path = "../../tests-common/processes.rs"]
mod common;
use common::{alive, wait_until};

/// Set in the helper process of `children_die_with_their_parent`.
const HELPER_ENV: &str = "PARCOURS_CLUSTER_TEST_HELPER";

fn binaries() -> ClusterBinaries {
    ClusterBinaries {
        manager: env!("CARGO_BIN_EXE_parcours-manager").into(),
        worker: env!("CARGO_BIN_EXE_parcours-cluster-worker").into(),
    }
}

/// A well-behaved client still works: a counter round trip.
fn serves_a_good_client(cluster: &LocalCluster) {
    let client = cluster.client().expect("a right-key client connects");
    let counter = client.counter("health");
    let before = counter.get().unwrap();
    assert_eq!(counter.add(1).unwrap(), before + 1);
}

#[test]
fn a_wrong_key_is_rejected_with_a_reason_and_the_manager_keeps_serving() {
    let cluster = LocalCluster::start(&binaries()).unwrap();
    for attempt in 0..3 {
        let wrong = SharedKey::new(format!("not the cluster's key {attempt}")).unwrap();
        let error =
            parcours_cluster::cluster::Client::connect(cluster.address(), &wrong).unwrap_err();
        assert!(matches!(error, ClusterError::Rejected(_)), "{error:?}");
        assert!(error.to_string().contains("rejected the key"), "{error}");
    }
    serves_a_good_client(&cluster);
}

#[test]
fn a_refusal_crosses_the_network_typed() {
    let cluster = LocalCluster::start(&binaries()).unwrap();
    let client = cluster.client().unwrap();
    let error = client.queue::<u64>("nothing here").ack(3).unwrap_err();
    match &error {
        ClusterError::Refused {
            address,
            refusal: Refusal::UnknownTask { queue, task },
        } => {
            assert_eq!(
                (address.as_str(), queue.as_str(), *task),
                (cluster.address(), "nothing here", 3)
            );
        }
        other => panic!("expected an unknown task, got {other:?}"),
    }
    // No queue was created by the mistake: a get on it still waits for a first task.
    assert_eq!(
        client.queue::<u64>("nothing here").stats().unwrap(),
        Default::default()
    );
}

/// A manager in this process, and a client of it, for the tests of async callers.
fn in_process_manager() -> (Manager, parcours_cluster::cluster::Client) {
    let key = SharedKey::random();
    let manager = Manager::start(ManagerConfig::new("127.0.0.1:0", key.clone())).unwrap();
    let client = Manager::connect(&manager.address().to_string(), &key).unwrap();
    (manager, client)
}

/// Puts, takes, acknowledges and counts: every kind of blocking call a student would make.
fn round_trip(client: &parcours_cluster::cluster::Client, queue: &str) -> i64 {
    let tasks = client.queue::<u64>(queue);
    tasks.put_all(&[20, 22]).unwrap();
    tasks.close().unwrap();
    let total = client.counter(queue);
    while let Taken::Task(task) = tasks.get(Duration::from_secs(5)).unwrap() {
        total.add(task.value as i64).unwrap();
        tasks.ack(task.id).unwrap();
    }
    assert!(tasks.join(Duration::from_secs(5)).unwrap());
    total.get().unwrap()
}

// Tokio panics ("Cannot start a runtime from within a runtime") when async code blocks on a
// runtime: the proxies must not, whatever runtime their caller runs on.

#[tokio::test(flavor = "current_thread")]
async fn proxies_work_from_async_code_on_a_one_thread_runtime() {
    let (manager, client) = in_process_manager();
    assert_eq!(round_trip(&client, "one thread"), 42);
    // The manager's own blocking wait, too.
    client.shutdown_manager().unwrap();
    manager.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_work_from_tokio_tasks_and_blocking_threads() {
    let (_manager, client) = in_process_manager();
    let in_a_task = client.clone();
    let from_task = tokio::spawn(async move { round_trip(&in_a_task, "task") });
    let in_a_blocking_thread = client.clone();
    let from_blocking =
        tokio::task::spawn_blocking(move || round_trip(&in_a_blocking_thread, "blocking"));
    assert_eq!(from_task.await.unwrap(), 42);
    assert_eq!(from_blocking.await.unwrap(), 42);
    assert_eq!(round_trip(&client, "block_on"), 42);
}

#[test]
fn proxies_work_inside_a_runtime_s_block_on() {
    let (_manager, client) = in_process_manager();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let total = runtime.block_on(async { round_trip(&client, "block_on") });
    assert_eq!(total, 42);
}

/// A small deterministic generator (xorshift), so that a failure can be replayed.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Between `min` and `max` random bytes.
    fn some_bytes(&mut self, min: usize, max: usize) -> Vec<u8> {
        let len = min + self.below((max - min + 1) as u64);
        self.bytes(len)
    }
}

#[test]
fn malformed_and_truncated_frames_never_crash_the_manager() {
    let mut cluster = LocalCluster::start(&binaries()).unwrap();
    let key = cluster.key().clone();
    let address = cluster.address().to_string();
    let connect = || {
        let stream = TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    };
    let authenticated = || {
        let mut stream = connect();
        authenticate(&mut stream, &key, &address).unwrap();
        stream
    };
    // A stranger that never answers the challenge, held open throughout.
    let silent = connect();
    let mut noise = Noise(0x5eed_cafe_f00d_beef);
    for round in 0..300 {
        // Writes may fail once the manager has closed its end: that is its right.
        match round % 6 {
            // Garbage instead of an answer to the challenge.
            0 => {
                let _ = connect().write_all(&noise.some_bytes(1, 200));
            }
            // A truncated answer, then the connection closes.
            1 => {
                let mut stream = connect();
                let mut challenge = [0u8; 40];
                stream.read_exact(&mut challenge).unwrap();
                let _ = stream.write_all(&noise.some_bytes(0, 63));
            }
            // Authenticated, then garbage.
            2 => {
                let _ = authenticated().write_all(&noise.some_bytes(1, 300));
            }
            // Authenticated, then a length prefix far beyond the limit: the manager must close
            // the connection rather than wait for (or allocate) gigabytes.
            3 => {
                let mut stream = authenticated();
                let huge = (MAX_FRAME_BYTES as u32 + 1).max(noise.next() as u32);
                let _ = stream.write_all(&huge.to_be_bytes());
                let _ = stream.write_all(&noise.bytes(64));
                let mut rest = Vec::new();
                let closed = stream.read_to_end(&mut rest);
                assert!(
                    closed.is_ok()
                        || closed.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
                    "the manager should close a connection announcing a {huge}-byte frame"
                );
            }
            // Closed in the middle of a frame.
            4 => {
                let mut stream = authenticated();
                let _ = stream.write_all(&1000u32.to_be_bytes());
                let _ = stream.write_all(&noise.bytes(10));
            }
            // A well-framed request whose content is garbage.
            _ => {
                let body = noise.some_bytes(1, 100);
                let mut stream = authenticated();
                let _ = stream.write_all(&(body.len() as u32).to_be_bytes());
                let _ = stream.write_all(&body);
            }
        }
        if round % 50 == 0 {
            serves_a_good_client(&cluster);
        }
    }
    drop(silent);
    let manager = cluster.manager_pid().unwrap();
    assert!(alive(manager), "the manager died");
    serves_a_good_client(&cluster);
    // And a full round of real work afterwards.
    let client = cluster.client().unwrap();
    let options = WorkerOptions::default();
    let tasks = client.queue::<PrimeRange>(&options.queue);
    tasks.put_all(&PrimeRange::split(10_000, 4)).unwrap();
    cluster.start_workers(1, &options).unwrap();
    assert!(tasks.join(Duration::from_secs(30)).unwrap());
    let results = client.results::<u64, PrimeCount>(&options.results);
    assert_eq!(
        results
            .entries()
            .unwrap()
            .iter()
            .map(|(_, r)| r.primes)
            .sum::<u64>(),
        1229
    );
    assert_eq!(cluster.stop().unwrap().workers_finished, 1);
}

#[test]
fn a_task_leased_by_a_killed_worker_is_done_by_another_exactly_once() {
    let mut cluster = LocalCluster::start(&binaries()).unwrap();
    let client = cluster.client().unwrap();
    // The pause keeps the first worker inside its first task long enough to kill it there.
    let slow = WorkerOptions {
        queue: "ranges".into(),
        pause: Duration::from_millis(500),
        ..WorkerOptions::default()
    };
    let ranges = PrimeRange::split(300_000, 12);
    let tasks = client.queue::<PrimeRange>(&slow.queue);
    let ids = tasks.put_all(&ranges).unwrap();
    cluster.start_workers(1, &slow).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || tasks.stats().unwrap().leased
            == 1),
        "the worker never took a task"
    );
    cluster.kill_worker(0).unwrap();
    // Its connection closed, so its lease comes back at once, long before it would expire.
    assert!(
        wait_until(Duration::from_secs(5), || {
            let stats = tasks.stats().unwrap();
            stats.leased == 0 && stats.returned >= 1
        }),
        "the dead worker's task did not come back: {:?}",
        tasks.stats().unwrap()
    );
    let fast = WorkerOptions {
        pause: Duration::ZERO,
        ..slow.clone()
    };
    cluster.start_workers(2, &fast).unwrap();
    assert!(
        tasks.join(Duration::from_secs(60)).unwrap(),
        "{:?}",
        tasks.stats()
    );

    let results = client
        .results::<u64, PrimeCount>(&fast.results)
        .entries()
        .unwrap();
    let mut keys: Vec<u64> = results.iter().map(|(id, _)| *id).collect();
    keys.sort_unstable();
    assert_eq!(keys, ids, "one result per task, none lost, none twice");
    for (id, count) in &results {
        let range = ranges[*id as usize];
        assert_eq!(count.range, range);
        assert_eq!(count.primes, range.count_primes(), "task {id}");
    }
    let stats = tasks.stats().unwrap();
    assert_eq!((stats.acked, stats.pending, stats.leased), (12, 0, 0));
    assert!(stats.returned >= 1);
    let report = cluster.stop().unwrap();
    assert_eq!(report.workers_finished, 2, "{report:?}");
}

#[test]
fn stop_closes_the_queue_and_ends_every_process() {
    let mut cluster = LocalCluster::start(&binaries()).unwrap();
    cluster.start_workers(2, &WorkerOptions::default()).unwrap();
    let mut pids = cluster.worker_pids();
    pids.extend(cluster.manager_pid());
    let report = cluster.stop_within(Duration::from_secs(20)).unwrap();
    assert_eq!(report.workers_finished, 2, "{report:?}");
    assert!(
        pids.iter().all(|&pid| !alive(pid)),
        "left running: {pids:?}"
    );
}

#[test]
fn dropping_the_cluster_leaves_no_process() {
    let mut cluster = LocalCluster::start(&binaries()).unwrap();
    // The queue is never closed: these workers would wait forever.
    cluster.start_workers(2, &WorkerOptions::default()).unwrap();
    let mut pids = cluster.worker_pids();
    pids.extend(cluster.manager_pid());
    assert!(pids.iter().all(|&pid| alive(pid)));
    drop(cluster);
    assert!(
        wait_until(Duration::from_secs(2), || pids
            .iter()
            .all(|&pid| !alive(pid))),
        "left running: {:?}",
        pids.iter().filter(|&&pid| alive(pid)).collect::<Vec<_>>()
    );
}

#[test]
fn children_outlive_the_thread_that_started_them() {
    // PR_SET_PDEATHSIG fires when the forking *thread* ends: the launcher must not let it.
    let cluster = std::thread::spawn(|| LocalCluster::start(&binaries()).unwrap())
        .join()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(cluster.manager_pid().unwrap()));
    serves_a_good_client(&cluster);
}

#[test]
#[ignore = "the helper process of children_die_with_their_parent, which runs it itself"]
fn helper_starts_a_cluster_and_waits() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let mut cluster = LocalCluster::start(&binaries()).unwrap();
    cluster.start_workers(2, &WorkerOptions::default()).unwrap();
    let mut pids = cluster.worker_pids();
    pids.extend(cluster.manager_pid());
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    println!("pids {}", pids.join(" "));
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn children_die_with_their_parent() {
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "helper_starts_a_cluster_and_waits",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(HELPER_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(helper.stdout.take().unwrap());
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(pids) = line.strip_prefix("pids ") {
                let _ = send.send(pids.to_string());
            }
        }
    });
    let line = receive.recv_timeout(Duration::from_secs(20));
    let Ok(line) = line else {
        let _ = helper.kill();
        panic!("the helper did not start its cluster");
    };
    let pids: Vec<u32> = line.split(' ').map(|pid| pid.parse().unwrap()).collect();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|&pid| alive(pid)));
    // SIGKILL: the helper runs no destructor, so only the kernel can end its children.
    helper.kill().unwrap();
    helper.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || pids
            .iter()
            .all(|&pid| !alive(pid))),
        "orphans left: {:?}",
        pids.iter().filter(|&&pid| alive(pid)).collect::<Vec<_>>()
    );
}

/// A type of the test's own, registered with an in-process manager.
#[derive(Default)]
struct Tally(u64);

#[derive(serde::Serialize, serde::Deserialize)]
enum TallyRequest {
    Add(u64),
    Total,
}

impl parcours_cluster::cluster::Shared for Tally {
    type Request = TallyRequest;
    type Reply = u64;
    fn serve(&mut self, request: TallyRequest) -> u64 {
        match request {
            // A read then a write: safe only because the manager serves one call at a time.
            TallyRequest::Add(n) => {
                let before = self.0;
                std::thread::yield_now();
                self.0 = before + n;
                self.0
            }
            TallyRequest::Total => self.0,
        }
    }
}

#[test]
fn a_registered_type_is_served_one_call_at_a_time_to_every_connection() {
    let key = SharedKey::random();
    let manager =
        Manager::start(ManagerConfig::new("127.0.0.1:0", key.clone()).register::<Tally>("Tally"))
            .unwrap();
    let address = manager.address().to_string();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let client = Manager::connect(&address, &key).unwrap();
                let tally = client.object::<Tally>("Tally", "hits");
                for _ in 0..100 {
                    tally.call(&TallyRequest::Add(1)).unwrap();
                }
            });
        }
    });
    let client = Manager::connect(&address, &key).unwrap();
    assert_eq!(
        client
            .object::<Tally>("Tally", "hits")
            .call(&TallyRequest::Total)
            .unwrap(),
        400
    );
    assert_eq!(
        client
            .object::<Tally>("Tally", "misses")
            .call(&TallyRequest::Total)
            .unwrap(),
        0
    );
}

#[test]
fn unknown_types_wrong_types_and_bad_requests_are_refused_by_name() {
    let key = SharedKey::random();
    let manager =
        Manager::start(ManagerConfig::new("127.0.0.1:0", key.clone()).register::<Tally>("Tally"))
            .unwrap();
    let client = Manager::connect(&manager.address().to_string(), &key).unwrap();
    let refusal = |error: ClusterError| match error {
        ClusterError::Refused { refusal, .. } => refusal,
        other => panic!("not a refusal: {other}"),
    };
    match refusal(
        client
            .object::<Tally>("Tallies", "x")
            .call(&TallyRequest::Total)
            .unwrap_err(),
    ) {
        Refusal::UnknownType {
            type_name,
            registered,
        } => {
            assert_eq!(
                (type_name.as_str(), registered),
                ("Tallies", vec!["Tally".to_string()])
            )
        }
        other => panic!("{other}"),
    }
    client
        .object::<Tally>("Tally", "x")
        .call(&TallyRequest::Add(2))
        .unwrap();

    /// The same name, asked for as another type.
    #[derive(Default)]
    struct Other;
    impl parcours_cluster::cluster::Shared for Other {
        type Request = String;
        type Reply = String;
        fn serve(&mut self, request: String) -> String {
            request
        }
    }
    let wrong = refusal(
        client
            .object::<Other>("Other", "x")
            .call(&"hi".into())
            .unwrap_err(),
    );
    assert!(matches!(wrong, Refusal::WrongType { .. }), "{wrong}");
    // A request the type cannot read: a `Tally` asked with a string.
    let bad = refusal(
        client
            .object::<Other>("Tally", "x")
            .call(&"hi".into())
            .unwrap_err(),
    );
    assert!(matches!(bad, Refusal::BadRequest { .. }), "{bad}");
    assert!(bad.to_string().contains("not a request of"), "{bad}");
    // The manager binary has no type of yours: said plainly.
    assert!(
        Refusal::UnknownType {
            type_name: "T".into(),
            registered: vec![]
        }
        .to_string()
        .contains("ManagerConfig::register")
    );
}
