//! The course's Ballista servers, one program for both (notebook 45):
//!
//! ```text
//! parcours-ballista scheduler --port PORT
//! parcours-ballista executor --name NAME --scheduler-port PORT --port PORT --grpc-port PORT
//!                            --vcores N --work-dir DIR
//! ```
//!
//! Both listen on 127.0.0.1 only. Exit status 2 for a wrong command line, 1 when the server
//! fails (the reason on stderr).

use std::process::ExitCode;

use parcours_ballista::servers::{self, ExecutorSettings};

const USAGE: &str = "usage: parcours-ballista scheduler --port PORT
       parcours-ballista executor --name NAME --scheduler-port PORT --port PORT --grpc-port PORT --vcores N --work-dir DIR";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str| -> Option<&str> {
        args.windows(2).find(|pair| pair[0] == name).map(|pair| pair[1].as_str())
    };
    let number = |name: &str| -> Result<u16, String> {
        option(name).ok_or(format!("{name} is missing"))?.parse().map_err(|_| format!("{name}: a port number"))
    };
    servers::log_warnings();
    let served = match args.first().map(String::as_str) {
        Some("scheduler") => match number("--port") {
            Ok(port) => parcours_ballista::run(servers::scheduler(port)),
            Err(problem) => return usage(&problem),
        },
        Some("executor") => {
            let settings = (|| -> Result<ExecutorSettings, String> {
                Ok(ExecutorSettings {
                    name: option("--name").ok_or("--name is missing")?.to_owned(),
                    scheduler_port: number("--scheduler-port")?,
                    port: number("--port")?,
                    grpc_port: number("--grpc-port")?,
                    vcores: number("--vcores")?.into(),
                    work_dir: option("--work-dir").ok_or("--work-dir is missing")?.to_owned(),
                })
            })();
            match settings {
                Ok(settings) => parcours_ballista::run(servers::executor(settings)),
                Err(problem) => return usage(&problem),
            }
        }
        _ => return usage("unknown command"),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("parcours-ballista: {error}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("parcours-ballista: {problem}\n{USAGE}");
    ExitCode::from(2)
}
