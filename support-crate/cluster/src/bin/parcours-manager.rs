//! The cluster's manager: `parcours-manager [ADDRESS] [--allow-remote] [--key-file FILE]`.
//! See `parcours_cluster::cluster`.
//!
//! The key comes from `PARCOURS_CLUSTER_KEY` or a file, never from the command line, where
//! `ps` would show it to every user. Prints `listening on ADDRESS` once ready, and serves until
//! a client asks it to stop.
//!
//! The key authenticates clients; it does not encrypt their messages, which travel in clear.
//! `--allow-remote` is for a network you trust: elsewhere, keep the manager on loopback and
//! reach it through an SSH tunnel (`ssh -L`) or WireGuard.

use std::path::Path;
use std::process::ExitCode;

use parcours_cluster::cluster::{ClusterError, Manager, ManagerConfig, SharedKey};

const USAGE: &str =
    "usage: parcours-manager [ADDRESS (default 127.0.0.1:0)] [--allow-remote] [--key-file FILE]
the key is read from PARCOURS_CLUSTER_KEY unless --key-file is given (16 bytes at least)
--allow-remote: listen beyond loopback; messages are authenticated, NOT encrypted, so only on a
trusted network, or keep loopback and tunnel (ssh -L, WireGuard)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version") {
        println!("parcours-manager {}", parcours::VERSION);
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("parcours-manager: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let mut bind = "127.0.0.1:0".to_string();
    let mut allow_remote = false;
    let mut key_file = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--allow-remote" => allow_remote = true,
            "--key-file" => key_file = Some(args.next().ok_or(USAGE)?),
            "--help" | "-h" => return Err(USAGE.into()),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}\n{USAGE}")),
            address => bind = address.to_string(),
        }
    }
    let key = match key_file {
        Some(path) => SharedKey::from_file(Path::new(path)),
        None => SharedKey::from_env(),
    }
    .map_err(|e: ClusterError| e.to_string())?;
    let mut config = ManagerConfig::new(&bind, key);
    config.allow_remote = allow_remote;
    let manager = Manager::start(config).map_err(|e| e.to_string())?;
    // The one line a launcher waits for; flushed, since stdout is a pipe there.
    println!("listening on {}", manager.address());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    manager.wait();
    Ok(())
}
