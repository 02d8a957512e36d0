//! The course's STREAM triad, as a program: `stream_triad LEN RUNS` prints the best triad
//! bandwidth in bytes/s over RUNS runs on arrays of LEN f64, with rayon's global pool.
//! `tests/bench/module1.py` runs it beside a C triad compiled with `gcc -O3 -fopenmp`.

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("usage: stream_triad LEN RUNS"))
        .collect();
    let (len, runs) = match args[..] {
        [len, runs] => (len, runs),
        _ => panic!("usage: stream_triad LEN RUNS"),
    };
    let bandwidth = parcours::measure::stream_bandwidth(len, runs);
    println!("triad_bytes_per_second {}", bandwidth.triad);
}
