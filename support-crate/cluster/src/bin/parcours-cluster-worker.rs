//! A cluster worker: `parcours-cluster-worker ADDRESS [--queue Q] [--results M] [--counter C]
//! [--lease-ms N] [--pause-ms N] [--name NAME] [--key-file FILE]`. See `parcours_cluster::cluster`.
//!
//! Counts the primes of the `PrimeRange` tasks it takes from the queue, puts each result in the
//! map under its task's id, acknowledges, and exits once the queue is closed and done.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use parcours_cluster::cluster::{Client, SharedKey, WorkerOptions, run_worker};

const USAGE: &str =
    "usage: parcours-cluster-worker ADDRESS [--queue tasks] [--results primes] [--counter done]
       [--lease-ms 30000] [--pause-ms 0] [--name NAME] [--key-file FILE]
the key is read from PARCOURS_CLUSTER_KEY unless --key-file is given";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version") {
        println!("parcours-cluster-worker {}", parcours::VERSION);
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("parcours-cluster-worker: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let mut options = WorkerOptions::default();
    let mut address = None;
    let mut key_file = None;
    let mut name = format!("worker {}", std::process::id());
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        let millis = |text: &String| {
            text.parse()
                .map(Duration::from_millis)
                .map_err(|e| format!("{arg} {text}: {e}"))
        };
        match arg.as_str() {
            "--queue" => options.queue = value()?.clone(),
            "--results" => options.results = value()?.clone(),
            "--counter" => options.counter = value()?.clone(),
            "--lease-ms" => options.lease = millis(value()?)?,
            "--pause-ms" => options.pause = millis(value()?)?,
            "--name" => name = value()?.clone(),
            "--key-file" => key_file = Some(value()?.clone()),
            "--help" | "-h" => return Err(USAGE.into()),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}\n{USAGE}")),
            given => address = Some(given.to_string()),
        }
    }
    let address = address.ok_or_else(|| format!("no manager address\n{USAGE}"))?;
    let key = match key_file {
        Some(path) => SharedKey::from_file(Path::new(&path)),
        None => SharedKey::from_env(),
    }
    .map_err(|e| e.to_string())?;
    let client = Client::connect(&address, &key).map_err(|e| e.to_string())?;
    let report = run_worker(&client, &options).map_err(|e| format!("{name}: {e}"))?;
    println!(
        "{name}: {} tasks ({} duplicates), {:.2} s computing",
        report.tasks,
        report.duplicates,
        report.busy.as_secs_f64()
    );
    Ok(())
}
