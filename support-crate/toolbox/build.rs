//! Nothing to build: the script exists so that the `[build-dependencies]` of Cargo.toml take
//! part in feature resolution (see the comment there).

fn main() {}
