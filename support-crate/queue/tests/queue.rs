//! The task queues on the real brokers: Redis started by the course, and SQLite. Worker
//! processes of `parcours-queue-worker`, killed and restarted; nothing may be lost, nothing
//! may be left running.

use std::collections::BTreeSet;
use std::time::Duration;

use parcours_queue::Fsync;
use parcours_queue::broker::{Broker, BrokerKind, Status};
use parcours_queue::pool::WorkerPool;
use parcours_queue::tasks::CourseTask;
use parcours_queue::worker::WorkerOptions;

#[path = "../../tests-common/processes.rs"]
mod processes;
use processes::{alive, wait_until};

const WAIT: Duration = Duration::from_secs(120);

fn brokers() -> Vec<BrokerKind> {
    // CI installs redis-server (`./course setup`); a machine without it still tests SQLite.
    let mut kinds = vec![BrokerKind::Sqlite];
    if std::process::Command::new("redis-server").arg("--version").output().is_ok() {
        kinds.push(BrokerKind::Redis);
    } else {
        eprintln!("redis-server is not installed: the Redis half of this test is skipped");
    }
    kinds
}

#[test]
fn a_pool_of_processes_runs_every_task_once_and_leaves_nothing_running() {
    for kind in brokers() {
        let broker = Broker::start_kind(kind).unwrap();
        let queue = broker.queue("naps");
        // Tasks of 30 ms: one worker alone would need seconds for the batch (300 x 30 ms over
        // its 4 slots), while the others start in a fraction of one; instant tasks could all
        // be done by the first worker up, on a loaded machine, before the others poll.
        let tasks: Vec<CourseTask> = (0..300).map(|_| CourseTask::Sleep { ms: 30 }).collect();
        let ids = queue.push_all(&tasks).unwrap();
        assert_eq!(queue.counts().unwrap().pending, 300, "{kind}");
        let pool = WorkerPool::start(&queue, 3, &WorkerOptions::default()).unwrap();
        let pids: Vec<u32> = pool.workers().iter().filter_map(|w| w.pid()).collect();
        let names: BTreeSet<String> = pool.names().into_iter().collect();
        let counts = queue.wait(WAIT).unwrap();
        assert_eq!((counts.done, counts.total()), (300, 300), "{kind}: {counts}");
        let naps: Vec<u64> = queue.results(&ids).unwrap();
        assert_eq!(naps, vec![30; 300], "{kind}");
        let records = queue.records().unwrap();
        let ran: BTreeSet<String> = records.iter().filter_map(|r| r.worker.clone()).collect();
        assert!(ran.is_subset(&names), "{kind}: {ran:?} not among {names:?}");
        assert!(ran.len() >= 2, "{kind}: every task ran on {ran:?}");
        assert!(records.iter().all(|r| r.attempts == 1), "{kind}");
        let runs = queue.runs_per_task();
        assert_eq!(runs.len(), 300, "{kind}: the run log");
        assert!(runs.values().all(|&n| n == 1), "{kind}");
        let report = pool.stop().unwrap();
        assert_eq!((report.stopped, report.killed), (3, 0), "{kind}: {report:?}");
        assert!(pids.iter().all(|&pid| !alive(pid)), "{kind}");
        let redis = broker.with_redis(|redis| Ok(redis.pid())).ok().flatten();
        let dir = broker.dir().to_path_buf();
        drop(broker);
        assert!(!dir.exists(), "{kind}: the broker's folder is deleted");
        if let Some(pid) = redis {
            assert!(wait_until(Duration::from_secs(5), || !alive(pid)), "redis-server stopped");
        }
    }
}

#[test]
fn a_malformed_payload_is_a_dead_letter_and_the_batch_goes_on() {
    for kind in brokers() {
        let broker = Broker::start_kind(kind).unwrap();
        let queue = broker.queue("mixed");
        let mut payloads: Vec<serde_json::Value> =
            (0..20).map(|n| serde_json::json!({"kind": "square", "n": n})).collect();
        payloads.insert(5, serde_json::json!({"kind": "square", "n": "seven"}));
        payloads.insert(9, serde_json::json!("not a task at all"));
        queue.push_payloads(payloads).unwrap();
        let mut pool = WorkerPool::start(&queue, 2, &WorkerOptions::default()).unwrap();
        let counts = queue.wait(WAIT).unwrap();
        assert_eq!((counts.done, counts.killed), (20, 2), "{kind}: {counts}");
        let dead: Vec<String> = queue
            .records()
            .unwrap()
            .into_iter()
            .filter(|r| r.status == Status::Killed)
            .map(|r| r.result.unwrap().unwrap_err())
            .collect();
        assert!(dead[0].contains("malformed payload") && dead[0].contains("seven"), "{kind}: {dead:?}");
        assert!(dead.iter().all(|e| e.contains("malformed")), "{kind}: {dead:?}");
        assert_eq!(pool.alive(), 2, "{kind}: no worker stopped on a bad payload");
        pool.stop().unwrap();
    }
}

#[test]
fn retries_back_off_then_give_up() {
    for kind in brokers() {
        let broker = Broker::start_kind(kind).unwrap();
        let queue = broker.queue("flaky");
        let ids = queue
            .push_all(&[CourseTask::Flaky { fail_first: 2 }, CourseTask::Flaky { fail_first: 5 }])
            .unwrap();
        let options = WorkerOptions { retries: 3, backoff: Duration::from_millis(100), ..Default::default() };
        let pool = WorkerPool::start(&queue, 1, &options).unwrap();
        let counts = queue.wait(WAIT).unwrap();
        assert_eq!((counts.done, counts.killed), (1, 1), "{kind}: {counts}");
        let records = queue.records().unwrap();
        assert_eq!((records[0].status, records[0].attempts), (Status::Done, 3), "{kind}");
        assert_eq!((records[1].status, records[1].attempts), (Status::Killed, 4), "{kind}");
        assert!(records[1].result.clone().unwrap().unwrap_err().contains("gave up after 4"), "{kind}");
        // The waits between attempts: 100 ms, then 200, then 400 (at least).
        let runs: Vec<_> = queue.runs().into_iter().filter(|r| r.task == ids[1]).collect();
        assert_eq!(runs.len(), 4, "{kind}: {runs:?}");
        for (pair, wanted) in runs.windows(2).zip([100, 200, 400]) {
            let gap = pair[1].started_ms - pair[0].ended_ms.unwrap();
            assert!(gap >= wanted - 5, "{kind}: {gap} ms between attempts, wanted {wanted}");
        }
        pool.stop().unwrap();
    }
}

#[test]
fn a_worker_killed_mid_batch_loses_nothing() {
    for kind in brokers() {
        let broker = Broker::start_kind(kind).unwrap();
        let queue = broker.queue("sleepy");
        let tasks: Vec<CourseTask> = (0..120).map(|_| CourseTask::Sleep { ms: 20 }).collect();
        let ids = queue.push_all(&tasks).unwrap();
        let options = WorkerOptions { concurrency: 4, ..Default::default() };
        let mut pool = WorkerPool::start(&queue, 2, &options).unwrap();
        assert!(wait_until(WAIT, || queue.counts().unwrap().done >= 20), "{kind}: work started");
        pool.kill(0).unwrap();
        let counts = queue.wait(WAIT).unwrap();
        assert_eq!(counts.done, 120, "{kind}: {counts}");
        assert_eq!(queue.results::<u64>(&ids).unwrap().len(), 120);
        let runs = queue.runs_per_task();
        let twice = runs.values().filter(|&&n| n > 1).count();
        eprintln!("{kind}: {twice} tasks ran twice after the kill");
        pool.stop().unwrap();
    }
}

#[test]
fn reliability_a_killed_worker_and_a_restarted_then_crashed_redis_lose_no_task() {
    if !brokers().contains(&BrokerKind::Redis) {
        return;
    }
    let broker = Broker::start_kind(BrokerKind::Redis).unwrap();
    // First a graceful restart (SIGTERM: Redis writes its append-only file) with `everysec`,
    // then a crash (SIGKILL) with `always`; in both, a worker is SIGKILLed mid-batch too.
    for (fsync, crash) in [(Fsync::EverySecond, false), (Fsync::Always, true)] {
        broker.with_redis(|redis| redis.restart(fsync)).unwrap();
        let queue = broker.queue(&format!("batch-{fsync:?}"));
        let tasks: Vec<CourseTask> = (0..1000).map(|_| CourseTask::Sleep { ms: 2 }).collect();
        let ids = queue.push_all(&tasks).unwrap();
        let mut pool = WorkerPool::start(&queue, 3, &WorkerOptions::default()).unwrap();
        assert!(wait_until(WAIT, || queue.counts().unwrap().done >= 100), "work started");
        pool.kill(0).unwrap();
        assert!(wait_until(WAIT, || queue.counts().unwrap().done >= 300), "work goes on");
        broker
            .with_redis(|redis| {
                if crash { redis.kill()? } else { redis.stop()? };
                redis.restart(fsync)
            })
            .unwrap();
        let counts = wait_for_done(&queue, ids.len());
        // One stored result per task: apalis keeps one result field per task.
        assert_eq!(queue.results::<u64>(&ids).unwrap().len(), 1000, "{fsync:?}: {counts}");
        let runs = queue.runs_per_task();
        assert_eq!(runs.len(), 1000, "{fsync:?}: every task ran");
        let duplicates = runs.values().filter(|&&n| n > 1).count();
        eprintln!("{fsync:?}, redis {}: 1000/1000 done, {duplicates} ran more than once",
            if crash { "killed" } else { "restarted" });
        assert_eq!(pool.alive(), 2, "the two live workers came back after the restart");
        pool.stop().unwrap();
    }
}

fn wait_for_done(queue: &parcours_queue::broker::Queue, n: usize) -> parcours_queue::broker::Counts {
    queue.wait(WAIT).unwrap_or_else(|e| panic!("{e}; records: {:?}", queue.counts()));
    let counts = queue.counts().unwrap();
    assert!(counts.done >= n, "{counts}");
    counts
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Deposit {
    id: String,
    account: String,
    amount: i64,
}

#[test]
fn a_deposit_delivered_twice_is_applied_twice_unless_keyed() {
    use parcours_queue::worker::KernelWorker;
    for kind in brokers() {
        let broker = Broker::start_kind(kind).unwrap();
        for keyed in [false, true] {
            let queue = broker.queue(&format!("deposits-{keyed}"));
            let ledger = broker.ledger(&format!("bank-{keyed}"));
            let deposits: Vec<Deposit> = (0..10)
                .map(|i| Deposit { id: format!("d{i}"), account: format!("a{}", i % 2), amount: 10 })
                .collect();
            // Each deposit twice: what a redelivery after a lost acknowledgement looks like.
            let twice: Vec<Deposit> = deposits.iter().chain(&deposits).cloned().collect();
            queue.push_values(&twice).unwrap();
            let book = ledger.clone();
            let worker = KernelWorker::start(&queue, "bank", &WorkerOptions::default(), move |d: Deposit, _| {
                if keyed {
                    book.add_once(&d.id, &d.account, d.amount).map(|_| ()).map_err(|e| e.to_string())
                } else {
                    book.add(&d.account, d.amount).map(|_| ()).map_err(|e| e.to_string())
                }
            })
            .unwrap();
            let counts = queue.wait(WAIT).unwrap();
            assert_eq!(counts.done, 20, "{kind}: {counts}");
            let records = queue.records().unwrap();
            assert!(records.iter().all(|r| r.worker.as_deref() == Some(worker.name())), "{kind}");
            let per_account = if keyed { 50 } else { 100 };
            let expected = [("a0".to_string(), per_account), ("a1".to_string(), per_account)];
            assert_eq!(ledger.balances().unwrap(), expected.into_iter().collect(), "{kind}, keyed {keyed}");
            worker.stop().unwrap();
        }
    }
}

#[test]
fn flows_run_each_step_as_a_task_in_dependency_order() {
    use parcours_queue::canvas::{Flow, Step};
    use serde_json::json;
    for kind in brokers() {
        let broker = Broker::start_kind(kind).unwrap();
        // A chain: ((3 + 4) × 10) + 1.
        let chain = Flow::chain("chain", vec![Step::Add { n: 4 }, Step::Multiply { by: 10 }, Step::Add { n: 1 }]);
        let queue = broker.queue("chain");
        let pool = WorkerPool::start_flow(&queue, &chain, 2, &WorkerOptions::default()).unwrap();
        queue.start_flow(&chain, vec![json!(3)]).unwrap();
        queue.wait(WAIT).unwrap();
        let report = queue.flow_report(&chain).unwrap();
        assert_eq!(report.output("2: add 1"), Some(&json!(71)), "{kind}: {report:?}");
        let ends: Vec<(u64, u64)> = report.steps.iter().map(|s| {
            let run = s.run.as_ref().expect("every step ran");
            (run.started_ms, run.ended_ms.unwrap())
        }).collect();
        assert!(ends.windows(2).all(|w| w[1].0 >= w[0].1), "{kind}: {ends:?}");
        pool.stop().unwrap();

        // A chord: a group on two workers, then the sum once all are done. One task at a time
        // per worker, 300 ms each: both workers take some.
        let chord = Flow::chord("chord", vec![Step::Sleep { ms: 300 }; 6], Step::Sum);
        let queue = broker.queue("chord");
        let one_at_a_time = WorkerOptions { concurrency: 1, batch: 1, ..WorkerOptions::default() };
        let pool = WorkerPool::start_flow(&queue, &chord, 2, &one_at_a_time).unwrap();
        queue.start_flow(&chord, (1..=6).map(|k| json!(k)).collect()).unwrap();
        // A chord's body is pushed as its header ends: wait for the flow's run, not its tasks.
        let report = queue.wait_flow(&chord, WAIT).unwrap();
        let sum = report.step("6: sum").unwrap();
        assert_eq!(sum.output, Some(Ok(json!(21))), "{kind}: {report:?}");
        assert_eq!(sum.inputs, Some(6), "{kind}");
        // Enqueued by each of the six; all but one of those tasks only waited.
        assert_eq!(sum.waiting_tasks, 5, "{kind}: {report:?}");
        let header_end = report.steps[..6].iter().map(|s| s.run.as_ref().unwrap().ended_ms.unwrap()).max().unwrap();
        assert!(sum.run.as_ref().unwrap().started_ms >= header_end, "{kind}: {report:?}");
        let workers: BTreeSet<&str> = report.steps[..6].iter().map(|s| s.run.as_ref().unwrap().worker.as_str()).collect();
        assert_eq!(workers.len(), 2, "{kind}: {workers:?}");
        assert!(report.gantt().as_svg().contains("6: sum") && chord.diagram().as_svg().contains("<line"), "{kind}");
        pool.stop().unwrap();

        // A failed step ends its flow: killed, never retried, and the chord's body never runs.
        let failing = Flow::chord("failing", vec![Step::Sleep { ms: 10 }, Step::Fail { message: "no data".into() }], Step::Sum);
        let queue = broker.queue("failing");
        let pool = WorkerPool::start_flow(&queue, &failing, 1, &WorkerOptions::default()).unwrap();
        queue.start_flow(&failing, vec![json!(1), json!(2)]).unwrap();
        queue.wait(WAIT).unwrap();
        let report = queue.flow_report(&failing).unwrap();
        let failed = report.step("1: fail").unwrap();
        assert_eq!(failed.status, Some(Status::Killed), "{kind}: {report:?}");
        assert!(matches!(&failed.output, Some(Err(e)) if e.contains("no data")), "{kind}: {report:?}");
        assert!(queue.records().unwrap().iter().all(|r| r.attempts <= 1), "{kind}");
        assert_eq!(report.output("2: sum"), None, "{kind}: {report:?}");
        pool.stop().unwrap();

        // A flow apalis-workflow cannot run is refused before it starts.
        let mut odd = Flow::new("odd");
        let a = odd.add("a", Step::Add { n: 1 }, &[]);
        let b = odd.add("b", Step::Add { n: 1 }, &[a]);
        odd.add("c", Step::Sum, &[a, b]);
        let refused = WorkerPool::start_flow(&broker.queue("odd"), &odd, 1, &WorkerOptions::default());
        assert!(matches!(refused, Err(parcours_queue::QueueError::Flow(_))), "{kind}: {refused:?}");
        assert!(queue.start_flow(&chord, vec![json!(1)]).is_err(), "{kind}: six inputs needed");
    }
}

#[test]
fn a_chords_body_runs_every_time_though_its_last_step_is_acknowledged_as_it_looks() {
    use parcours_queue::canvas::{Flow, Step};
    use serde_json::Value;
    // Notebook 42's chord, 25 times. On Redis the body's first look at its steps' results can
    // meet one acknowledged halfway (apalis-redis 1.0 reads a status and a result in two
    // commands): about 1 run in 20 here, each ended by a timeout before the course retried it.
    let ranges: Vec<Step> = (0..6u64).map(|k| Step::Primes { start: k * 50_000, end: (k + 1) * 50_000 }).collect();
    let chord = Flow::chord("total", ranges, Step::Sum);
    let two_at_a_time = WorkerOptions { concurrency: 2, batch: 1, ..WorkerOptions::default() };
    for kind in brokers() {
        let broker = Broker::start_kind(kind).unwrap();
        let mut retried = 0;
        for run in 0..25 {
            let queue = broker.fresh_queue("chord");
            let pool = WorkerPool::start_flow(&queue, &chord, 2, &two_at_a_time).unwrap();
            queue.start_flow(&chord, vec![Value::Null; 6]).unwrap();
            let report = queue.wait_flow(&chord, WAIT).unwrap();
            assert_eq!(report.output("6: sum"), Some(&serde_json::json!(25_997)), "{kind}, run {run}: {report:?}");
            let records = queue.records().unwrap();
            // Retried once at most, and only the body.
            assert!(records.iter().all(|r| r.attempts <= 2), "{kind}: {records:?}");
            retried += records.iter().filter(|r| r.attempts == 2).count();
            pool.stop().unwrap();
        }
        eprintln!("{kind}: the body was retried in {retried} of 25 runs");
    }
}

#[test]
fn a_beat_pushes_a_task_at_each_tick_for_the_workers() {
    use parcours_queue::beat::Beat;
    for kind in brokers() {
        let broker = Broker::start_kind(kind).unwrap();
        let queue = broker.queue("beat");
        let pool = WorkerPool::start(&queue, 1, &WorkerOptions::default()).unwrap();
        let beat = Beat::start(&queue, "*/1 * * * * *", &CourseTask::Square { n: 7 }).unwrap();
        std::thread::sleep(Duration::from_millis(3500));
        let pushes = beat.stop().unwrap();
        assert!((3..=4).contains(&pushes.len()), "{kind}: {pushes:?}");
        assert!(pushes.windows(2).all(|w| w[1].tick == w[0].tick + 1), "{kind}: {pushes:?}");
        queue.wait(WAIT).unwrap();
        let ids: Vec<String> = pushes.iter().map(|p| p.task.clone()).collect();
        let results: Vec<u64> = queue.results(&ids).unwrap();
        assert_eq!(results, vec![49; pushes.len()], "{kind}");
        pool.stop().unwrap();
        let wrong = Beat::start(&queue, "every two seconds", &CourseTask::Noop);
        assert!(matches!(&wrong, Err(e) if e.to_string().contains("cron expression")), "{kind}: {wrong:?}");
    }
}
