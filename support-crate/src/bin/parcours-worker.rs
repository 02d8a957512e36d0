//! The course's worker: `parcours-worker --config worker.json`. See `parcours::farm`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = match args.as_slice() {
        [flag, path] if flag == "--config" => PathBuf::from(path),
        _ => {
            eprintln!("usage: parcours-worker --config WORKER.json");
            return ExitCode::from(2);
        }
    };
    let config = match parcours::farm::WorkerConfig::load(&path) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("parcours-worker: {message}");
            return ExitCode::from(2);
        }
    };
    match parcours::farm::serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("parcours-worker: {error}");
            ExitCode::FAILURE
        }
    }
}
