//! What a cluster costs: starting a thread vs starting a process, and the manager's queue
//! throughput over loopback with one and several clients. Prints `name value` lines, then a
//! summary. Run it with the binaries built beside it:
//! `cargo build --release --bins && cargo run --release --example cluster_throughput [TASKS]`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use parcours_cluster::cluster::{Client, ClusterBinaries, LocalCluster, Taken};

const USAGE: &str = "usage: cluster_throughput [TASKS (default 5000)]";

/// The mean time of `f` over `runs` runs.
fn mean_time(runs: u32, mut f: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..runs {
        f();
    }
    started.elapsed() / runs
}

fn spawn_and_wait(program: &std::path::Path, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(status.success(), "{} failed", program.display());
}

/// Each of `clients` threads, with its own connection, puts `tasks / clients` tasks on a
/// shared queue then takes and acknowledges as many: three round trips per task.
/// Returns tasks per second.
fn queue_throughput(cluster: &LocalCluster, queue: &str, clients: usize, tasks: usize) -> f64 {
    let per_client = tasks / clients;
    let connections: Vec<Client> = (0..clients).map(|_| cluster.client().unwrap()).collect();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for client in &connections {
            scope.spawn(move || {
                let queue = client.queue::<u64>(queue);
                for i in 0..per_client as u64 {
                    queue.put(&i).unwrap();
                    match queue.get(Duration::from_secs(10)).unwrap() {
                        Taken::Task(task) => {
                            queue.ack(task.id).unwrap();
                        }
                        other => panic!("expected a task, got {other:?}"),
                    }
                }
            });
        }
    });
    (per_client * clients) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let tasks: usize = match std::env::args().nth(1) {
        Some(text) => text.parse().expect(USAGE),
        None => 5000,
    };
    let binaries = ClusterBinaries::locate().unwrap_or_else(|e| panic!("{e}"));

    let thread = mean_time(2000, || std::thread::spawn(|| {}).join().unwrap());
    let process_true = mean_time(200, || spawn_and_wait("true".as_ref(), &[]));
    let process_worker = mean_time(200, || spawn_and_wait(&binaries.worker, &["--version"]));
    println!("thread_spawn_join_us {:.1}", thread.as_secs_f64() * 1e6);
    println!(
        "process_spawn_wait_true_us {:.1}",
        process_true.as_secs_f64() * 1e6
    );
    println!(
        "process_spawn_wait_worker_version_us {:.1}",
        process_worker.as_secs_f64() * 1e6
    );

    let started = Instant::now();
    let cluster = LocalCluster::start(&binaries).unwrap();
    let manager_start = started.elapsed();
    let started = Instant::now();
    let client = cluster.client().unwrap();
    let connect = started.elapsed();
    let counter = client.counter("pings");
    let round_trip = mean_time(2000, || {
        counter.add(1).unwrap();
    });
    let batch: Vec<u64> = (0..tasks as u64).collect();
    let started = Instant::now();
    client.queue::<u64>("batch").put_all(&batch).unwrap();
    let batched_puts = tasks as f64 / started.elapsed().as_secs_f64();
    println!("manager_start_ms {:.1}", manager_start.as_secs_f64() * 1e3);
    println!("client_connect_us {:.0}", connect.as_secs_f64() * 1e6);
    println!("rpc_round_trip_us {:.1}", round_trip.as_secs_f64() * 1e6);
    println!("put_all_items_per_s {batched_puts:.0}");
    let clients = [1, 2, 4, 8];
    let mut rates = Vec::new();
    for n in clients {
        let rate = queue_throughput(&cluster, &format!("shared-{n}"), n, tasks);
        println!("queue_put_get_ack_tasks_per_s_{n}_clients {rate:.0}");
        rates.push(rate);
    }
    cluster.stop().unwrap();

    println!();
    println!(
        "Summary ({} cores):",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "- starting and joining a thread takes {:.0} µs; starting and waiting for a process {:.0} µs \
         (`true`) to {:.0} µs (the worker binary): a process costs {:.0}x a thread.",
        thread.as_secs_f64() * 1e6,
        process_true.as_secs_f64() * 1e6,
        process_worker.as_secs_f64() * 1e6,
        process_worker.as_secs_f64() / thread.as_secs_f64()
    );
    println!(
        "- a manager starts in {:.0} ms; one RPC round trip over loopback takes {:.0} µs, so a task \
         (put, get, ack) costs about {:.0} µs of messaging: tasks must compute for much longer than that.",
        manager_start.as_secs_f64() * 1e3,
        round_trip.as_secs_f64() * 1e6,
        1e6 / rates[0]
    );
    println!(
        "- the queue moves {:.0} tasks/s with 1 client and {:.0} with {} clients; put_all sends {:.0} items/s \
         in one call: batching beats round trips.",
        rates[0],
        rates.iter().cloned().fold(0.0, f64::max),
        clients[rates
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i)],
        batched_puts
    );
}
