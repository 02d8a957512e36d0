//! A worker process fed through its pipes: one JSON `PrimeRange` per line on stdin, one JSON
//! `Result<PrimeCount, String>` per line on stdout; exits at the end of stdin.
//! `parcours_cluster::processes::ProcessPool` starts several. `--version` prints the version and exits
//! (the cheapest run there is: what notebook 25 times to measure a process's start).

use std::io::{BufRead, Write};

use parcours_cluster::cluster::{PrimeCount, PrimeRange};

fn main() {
    if std::env::args().any(|a| a == "--version") {
        println!("parcours-pipe-worker {}", parcours::VERSION);
        return;
    }
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let Ok(line) = line else { break };
        let answer: Result<PrimeCount, String> = serde_json::from_str::<PrimeRange>(&line)
            .map(|range| PrimeCount {
                range,
                primes: range.count_primes(),
            })
            .map_err(|error| format!("not a PrimeRange: {error}"));
        let reply = serde_json::to_string(&answer).expect("a result serialises");
        // The parent is gone when stdout is closed: stop quietly.
        if writeln!(stdout, "{reply}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
    }
}
