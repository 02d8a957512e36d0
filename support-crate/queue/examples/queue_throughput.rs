//! Tasks per second through a queue: `tasks` no-op tasks pushed in one batch, then run by
//! `workers` worker processes already up; timed from the push to the last task done. Prints
//! `name value` lines. Run by `./course bench queues` (tests/bench/module4_queues.py), which
//! compares it with Celery on the same Redis.
//!
//! ```text
//! queue_throughput (--redis-port P --password-file F | --sqlite | --redis) --workers N
//!     [--tasks 2000] [--concurrency 1] [--push-one-by-one]
//! ```
//! With `--push-one-by-one`, no worker: the time to push the tasks one call each.
//! ```text
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use parcours_queue::broker::{Broker, BrokerAddress, BrokerKind, Queue};
use parcours_queue::pool::WorkerPool;
use parcours_queue::tasks::CourseTask;
use parcours_queue::worker::WorkerOptions;

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut port, mut password_file, mut kind) = (None, None, None);
    let (mut workers, mut tasks, mut concurrency) = (1usize, 2000usize, 1usize);
    let mut one_by_one = false;
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{flag} wants a value"));
        match flag.as_str() {
            "--redis-port" => port = Some(value().parse::<u16>().expect("a port")),
            "--password-file" => password_file = Some(PathBuf::from(value())),
            "--sqlite" => kind = Some(BrokerKind::Sqlite),
            "--redis" => kind = Some(BrokerKind::Redis),
            "--workers" => workers = value().parse().expect("a number of workers"),
            "--tasks" => tasks = value().parse().expect("a number of tasks"),
            "--concurrency" => concurrency = value().parse().expect("a concurrency"),
            "--push-one-by-one" => one_by_one = true,
            other => panic!("unknown option {other}"),
        }
    }
    let broker = match (port, password_file, kind) {
        (Some(port), Some(password_file), None) => {
            Broker::connect(BrokerAddress::Redis { port, password_file }).unwrap()
        }
        (None, None, Some(kind)) => Broker::start_kind(kind).unwrap(),
        _ => panic!("name one broker: --redis-port and --password-file, --redis or --sqlite"),
    };
    let queue = broker.fresh_queue(&format!("throughput-{}", std::process::id()));
    if one_by_one {
        // The producer alone: one round trip per task, as Celery's `task.delay()`.
        let started = Instant::now();
        for _ in 0..tasks {
            queue.push(&CourseTask::Noop).unwrap();
        }
        println!("pushes_per_s {:.0}", tasks as f64 / started.elapsed().as_secs_f64());
        return;
    }
    // Workers poll every 5 ms when idle; a batch of 10 per fetch, as the defaults.
    let options = WorkerOptions { concurrency, poll: Duration::from_millis(5), ..Default::default() };
    let pool = WorkerPool::start(&queue, workers, &options).unwrap();
    // Every worker up before the clock starts: one task each, then a moment for the last.
    queue.push_all(&vec![CourseTask::Noop; workers]).unwrap();
    wait_finished(&queue, workers);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    queue.push_all(&vec![CourseTask::Noop; tasks]).unwrap();
    wait_finished(&queue, workers + tasks);
    let seconds = started.elapsed().as_secs_f64();
    let counts = queue.counts().unwrap();
    assert_eq!(counts.done, workers + tasks, "{counts}");
    pool.stop().unwrap();
    println!("broker {}", broker.kind());
    println!("workers {workers}");
    println!("concurrency {concurrency}");
    println!("tasks {tasks}");
    println!("seconds {seconds:.3}");
    println!("tasks_per_s {:.0}", tasks as f64 / seconds);
}

fn wait_finished(queue: &Queue, n: usize) {
    let started = Instant::now();
    while queue.finished().unwrap() < n {
        assert!(started.elapsed() < Duration::from_secs(600), "tasks still running after 10 minutes");
        std::thread::sleep(Duration::from_millis(2));
    }
}
