//! The workflow's input: JSON-lines files of synthetic shop events, one folder per day
//! (`2026-11-01/part-03.jsonl`), as a web shop's servers would leave them.
//!
//! Each line is one event, e.g.
//! `{"ts":"2026-11-01T05:12:33Z","user":1234,"kind":"buy","amount":17.5}`: `kind` is `view`
//! (70 %), `cart` (20 %) or `buy` (10 %), `amount` is 0 except for purchases. Every file has a
//! generator of its own, a PCG64 seeded from the set's seed and the file's place, so files are
//! written in parallel and the same [`EventSpec`] always gives the same bytes.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use parcours::display::{Table, format_bytes};
use parcours::rayon::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

use crate::PipelineError;
use crate::steps::write_atomically;

/// The kinds of events and how often each occurs (in %).
pub const KINDS: [(&str, u32); 3] = [("view", 70), ("cart", 20), ("buy", 10)];

/// The shape of a set of event files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSpec {
    /// The first day of November 2026 (1 for 2026-11-01).
    pub first_day: u32,
    /// How many days, one folder each (at most 30: the days are 2026-11-01 to 2026-11-30).
    pub days: u32,
    /// Files per day.
    pub files_per_day: u32,
    /// Events per file.
    pub rows_per_file: u64,
    /// How many distinct users.
    pub users: u32,
    /// The generator's seed.
    pub seed: u64,
}

impl EventSpec {
    /// The lessons' set: 3 days × 2 files of 20 000 events (about 1.3 MB a file) in small mode
    /// (`PARCOURS_SMALL`: CI, Binder), 6 days × 8 files of 2 000 000 events (about 130 MB a
    /// file, 6 GB in all) on your own machine.
    pub fn for_course() -> Self {
        if parcours::notebook::small() {
            EventSpec { first_day: 1, days: 3, files_per_day: 2, rows_per_file: 20_000, users: 5_000, seed: 2026 }
        } else {
            EventSpec { first_day: 1, days: 6, files_per_day: 8, rows_per_file: 2_000_000, users: 500_000, seed: 2026 }
        }
    }

    /// A set of `days` × `files_per_day` files of `rows_per_file` events, seed 2026.
    pub fn new(days: u32, files_per_day: u32, rows_per_file: u64) -> Self {
        EventSpec { first_day: 1, days, files_per_day, rows_per_file, users: 5_000, seed: 2026 }
    }

    /// The days' names, `2026-11-01` on.
    pub fn day_names(&self) -> Vec<String> {
        (self.first_day..self.first_day + self.days).map(|d| format!("2026-11-{d:02}")).collect()
    }

    /// Every file's path relative to the set's folder, day by day.
    pub fn files(&self) -> Vec<PathBuf> {
        self.day_names()
            .iter()
            .flat_map(|day| (0..self.files_per_day).map(move |k| Path::new(day).join(format!("part-{k:02}.jsonl"))))
            .collect()
    }
}

/// A set of event files on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSet {
    /// Its folder.
    pub dir: PathBuf,
    /// What it holds.
    pub spec: EventSpec,
}

const MANIFEST: &str = "events.json";

impl EventSet {
    /// Writes the set into `dir`, in parallel, each file atomically. A folder that already
    /// holds this very set is reused (its files are checked, missing ones written again); one
    /// that holds another set is cleared first; one that holds anything else is refused.
    ///
    /// # Errors
    /// A folder with foreign files, or a file that cannot be written.
    pub fn generate(dir: impl AsRef<Path>, spec: &EventSpec) -> Result<Self, PipelineError> {
        let dir = dir.as_ref().to_path_buf();
        assert!(spec.first_day >= 1 && spec.first_day + spec.days <= 31, "days from 2026-11-01 to 2026-11-30");
        let manifest = dir.join(MANIFEST);
        match fs::read_to_string(&manifest) {
            Ok(text) if serde_json::from_str::<EventSpec>(&text).ok().as_ref() == Some(spec) => {}
            Ok(_) => {
                // Another set: its days go, with anything the steps wrote beside them.
                fs::remove_dir_all(&dir).map_err(PipelineError::io("clearing", &dir))?;
            }
            Err(_) if dir.read_dir().is_ok_and(|mut entries| entries.next().is_some()) => {
                return Err(PipelineError::Program(format!(
                    "{} holds files that are not an event set (no {MANIFEST}): pick an empty or new folder",
                    dir.display()
                )));
            }
            Err(_) => {}
        }
        fs::create_dir_all(&dir).map_err(PipelineError::io("creating", &dir))?;
        let files = spec.files();
        files.par_iter().enumerate().try_for_each(|(index, file)| {
            let path = dir.join(file);
            if fs::metadata(&path).is_ok_and(|m| Some(m.len()) == recorded_size(&dir, index)) {
                return Ok(());
            }
            let day = file.parent().expect("a day folder");
            fs::create_dir_all(dir.join(day)).map_err(PipelineError::io("creating", dir.join(day)))?;
            let bytes = file_bytes(spec, index, &day.to_string_lossy());
            write_atomically(&path, &bytes)?;
            record_size(&dir, index, bytes.len() as u64);
            Ok(())
        })?;
        let text = serde_json::to_string_pretty(spec).expect("a spec serialises");
        write_atomically(&manifest, text.as_bytes())?;
        Ok(EventSet { dir, spec: spec.clone() })
    }

    /// The set in `dir`, as its manifest describes it.
    ///
    /// # Errors
    /// When `dir` holds no event set.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, PipelineError> {
        let dir = dir.as_ref().to_path_buf();
        let text = fs::read_to_string(dir.join(MANIFEST)).map_err(PipelineError::io("reading", dir.join(MANIFEST)))?;
        let spec = serde_json::from_str(&text).map_err(|e| PipelineError::Program(format!("{}: {e}", dir.join(MANIFEST).display())))?;
        Ok(EventSet { dir, spec })
    }

    /// Every file's full path, day by day.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.spec.files().into_iter().map(|f| self.dir.join(f)).collect()
    }

    /// The files of one day (`2026-11-02`).
    pub fn day(&self, day: &str) -> Vec<PathBuf> {
        self.paths().into_iter().filter(|p| p.parent().is_some_and(|d| d.ends_with(day))).collect()
    }

    /// The bytes on disk, all files together.
    pub fn bytes(&self) -> u64 {
        self.paths().iter().filter_map(|p| fs::metadata(p).ok()).map(|m| m.len()).sum()
    }

    /// A table: folder, days, files, events, size.
    pub fn table(&self) -> Table {
        let spec = &self.spec;
        let files = u64::from(spec.days * spec.files_per_day);
        Table::new(["folder", "days", "files", "events", "on disk"]).title("the event files").row([
            self.dir.display().to_string(),
            spec.days.to_string(),
            files.to_string(),
            (files * spec.rows_per_file).to_string(),
            format_bytes(self.bytes()),
        ])
    }
}

/// The events of file `index` of `spec`, as JSON lines.
fn file_bytes(spec: &EventSpec, index: usize, day: &str) -> Vec<u8> {
    let mut rng = Pcg64::seed_from_u64(spec.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut text = String::with_capacity(spec.rows_per_file as usize * 72);
    for _ in 0..spec.rows_per_file {
        let second = rng.random_range(0..86_400u32);
        let user = rng.random_range(1..=spec.users);
        let draw = rng.random_range(0..100u32);
        let kind = if draw < KINDS[0].1 { KINDS[0].0 } else if draw < KINDS[0].1 + KINDS[1].1 { KINDS[1].0 } else { KINDS[2].0 };
        let amount = if kind == "buy" { f64::from(rng.random_range(100..20_000u32)) / 100.0 } else { 0.0 };
        let _ = writeln!(
            text,
            r#"{{"ts":"{day}T{:02}:{:02}:{:02}Z","user":{user},"kind":"{kind}","amount":{amount}}}"#,
            second / 3600,
            second / 60 % 60,
            second % 60
        );
    }
    text.into_bytes()
}

// The size of each file written (`.sizes/<index>`), so that a re-run knows a file a lesson has
// cut or changed since (the bad-input demos) from a complete one, without reading it.
fn record_size(dir: &Path, index: usize, size: u64) {
    let sizes = dir.join(".sizes");
    let _ = fs::create_dir_all(&sizes);
    let _ = write_atomically(&sizes.join(index.to_string()), size.to_string().as_bytes());
}

fn recorded_size(dir: &Path, index: usize) -> Option<u64> {
    fs::read_to_string(dir.join(".sizes").join(index.to_string())).ok()?.trim().parse().ok()
}
