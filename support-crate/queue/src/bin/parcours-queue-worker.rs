//! One worker of the course's task queues: takes tasks from a queue on Redis or SQLite and
//! runs them (`parcours_queue::tasks::CourseTask`), until `SIGTERM` or `SIGINT`.
//!
//! ```text
//! parcours-queue-worker (--redis-port P --password-file F | --sqlite FILE) --queue Q --name N
//!     [--runs-dir D] [--concurrency 4] [--retries 0] [--backoff-ms 100] [--time-limit-ms T]
//!     [--heartbeat-ms 1000] [--missed-heartbeats 3] [--poll-ms 20] [--batch 10]
//!     [--flow FILE]
//! ```
//! With `--flow`, the worker runs the steps of the flow in FILE (`parcours_queue::canvas`).
//! Started by `parcours_queue::pool::WorkerPool`. When the broker goes away (Redis restarted)
//! apalis ends the worker; this program waits one heartbeat and starts it again under the
//! same name, which makes the broker hand it back the tasks it held.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use parcours_queue::broker::BrokerAddress;
use parcours_queue::canvas::Flow;
use parcours_queue::worker::{WorkerOptions, run_flow_worker, run_worker};

struct Args {
    address: BrokerAddress,
    queue: String,
    name: String,
    runs_dir: Option<PathBuf>,
    options: WorkerOptions,
    flow: Option<Flow>,
}

fn parse(mut words: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut port, mut password_file, mut sqlite) = (None, None, None);
    let (mut queue, mut name, mut runs_dir, mut flow) = (None, None, None, None);
    let mut options = WorkerOptions::default();
    fn number<T: FromStr>(flag: &str, value: &str) -> Result<T, String> {
        value.parse().map_err(|_| format!("{flag} wants a number, not {value:?}"))
    }
    let ms = |flag: &str, value: &str| number::<u64>(flag, value).map(Duration::from_millis);
    while let Some(flag) = words.next() {
        let value = words.next().ok_or_else(|| format!("{flag} wants a value"))?;
        match flag.as_str() {
            "--redis-port" => port = Some(number::<u16>(&flag, &value)?),
            "--password-file" => password_file = Some(PathBuf::from(value)),
            "--sqlite" => sqlite = Some(PathBuf::from(value)),
            "--queue" => queue = Some(value),
            "--name" => name = Some(value),
            "--runs-dir" => runs_dir = Some(PathBuf::from(value)),
            "--concurrency" => options.concurrency = number(&flag, &value)?,
            "--retries" => options.retries = number(&flag, &value)?,
            "--backoff-ms" => options.backoff = ms(&flag, &value)?,
            "--time-limit-ms" => options.time_limit = Some(ms(&flag, &value)?),
            "--heartbeat-ms" => options.heartbeat = ms(&flag, &value)?,
            "--missed-heartbeats" => options.missed_heartbeats = number(&flag, &value)?,
            "--poll-ms" => options.poll = ms(&flag, &value)?,
            "--batch" => options.batch = number(&flag, &value)?,
            "--flow" => {
                let text = std::fs::read_to_string(&value).map_err(|e| format!("--flow {value}: {e}"))?;
                flow = Some(serde_json::from_str(&text).map_err(|e| format!("--flow {value}: not a flow: {e}"))?);
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let address = match (port, password_file, sqlite) {
        (Some(port), Some(password_file), None) => BrokerAddress::Redis { port, password_file },
        (None, None, Some(path)) => BrokerAddress::Sqlite { path },
        _ => return Err("name one broker: --redis-port and --password-file, or --sqlite".into()),
    };
    Ok(Args {
        address,
        queue: queue.ok_or("--queue is missing")?,
        name: name.ok_or("--name is missing")?,
        runs_dir,
        options,
        flow,
    })
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("parcours-queue-worker: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut terminate = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        let _ = stop.send(true);
    });
    let mut failing_since = None;
    loop {
        let mut until = stopped.clone();
        let shutdown = async move {
            let _ = until.wait_for(|stop| *stop).await;
        };
        let run = match &args.flow {
            None => run_worker(&args.address, &args.queue, &args.name, &args.options, args.runs_dir.clone(), shutdown).await,
            Some(flow) => {
                let runs_dir = args.runs_dir.clone();
                run_flow_worker(&args.address, &args.queue, &args.name, flow, &args.options, runs_dir, shutdown).await
            }
        };
        if *stopped.borrow() {
            return ExitCode::SUCCESS;
        }
        match run {
            Ok(()) => return ExitCode::SUCCESS,
            Err(error) => {
                // Said once per outage, not once per heartbeat.
                if failing_since.is_none() {
                    eprintln!("parcours-queue-worker {}: {error}; trying again", args.name);
                    failing_since = Some(std::time::Instant::now());
                }
            }
        }
        let mut until = stopped.clone();
        tokio::select! {
            _ = tokio::time::sleep(args.options.heartbeat) => {}
            _ = until.wait_for(|stop| *stop) => return ExitCode::SUCCESS,
        }
    }
}
