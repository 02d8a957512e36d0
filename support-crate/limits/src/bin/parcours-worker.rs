//! The course's worker: `parcours-worker --config worker.json`. The configuration file holds the
//! token: it is read from that file (mode 600), never from the command line, which every user
//! of the machine can read. See `parcours_limits::farm`.

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
    let config = match parcours_limits::farm::WorkerConfig::load(&path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("parcours-worker: {error}");
            return ExitCode::from(2);
        }
    };
    match parcours_limits::farm::serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("parcours-worker: {error}");
            ExitCode::FAILURE
        }
    }
}
