//! The pipeline's steps. Two rules make a step safe to run under any scheduler:
//!
//! - **atomic**: its output appears whole or not at all. [`write_atomically`] writes a hidden
//!   temporary file beside the target, syncs it, then renames it (a rename within a folder is
//!   atomic on POSIX file systems): a step killed mid-write leaves at most a temporary file,
//!   which the next run removes (once its writer is gone), never a half-written output that a later step would trust.
//! - **idempotent**: running it twice gives the same result as once. [`summarize_file`] skips
//!   an input whose summary is already complete, so a retried or re-run workflow redoes only
//!   what is missing, and the aggregate counts each input once ([`aggregate`] refuses twice).
//!
//! A step with several outputs ([`partition_file`]: one file per kind of event) writes each
//! atomically, then a manifest: it is complete when its manifest exists.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use parcours::display::{Table, format_bytes};
use parcours::rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::PipelineError;

/// One kind of event's totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// How many events.
    pub count: u64,
    /// The sum of their amounts.
    pub amount: f64,
}

impl Totals {
    fn add(&mut self, other: Totals) {
        self.count += other.count;
        self.amount += other.amount;
    }
}

/// What one input file holds: the output of the per-file step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The input, as `day/part-NN.jsonl`.
    pub input: String,
    /// Its day (its folder's name).
    pub day: String,
    /// Its events.
    pub rows: u64,
    /// Its size.
    pub bytes: u64,
    /// Totals per kind of event.
    pub kinds: BTreeMap<String, Totals>,
}

/// One event, as the files hold it.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    ts: &'a str,
    #[allow(dead_code)]
    user: u64,
    kind: &'a str,
    amount: f64,
}

/// Reads one input file and sums its events per kind, its lines parsed in parallel.
///
/// # Errors
/// [`PipelineError::BadInput`] naming the file and the first line that is not an event (a
/// truncated last line among them); [`PipelineError::Planted`] when a fault was planted on it.
pub fn summarize(path: &Path) -> Result<Summary, PipelineError> {
    take_planted_fault(path)?;
    let text = fs::read(path).map_err(PipelineError::io("reading", path))?;
    let bad = |line: usize, problem: String| PipelineError::BadInput { path: path.to_path_buf(), line, problem };
    let lines = event_lines(path, &text)?;
    let kinds = lines
        .par_iter()
        .enumerate()
        .try_fold(BTreeMap::<String, Totals>::new, |mut kinds, (k, line)| {
            let event: Event = serde_json::from_slice(line).map_err(|e| bad(k + 1, e.to_string()))?;
            if event.ts.len() < 10 {
                return Err(bad(k + 1, format!("timestamp {:?} has no date", event.ts)));
            }
            let totals = kinds.entry(event.kind.to_string()).or_default();
            totals.add(Totals { count: 1, amount: event.amount });
            Ok(kinds)
        })
        .try_reduce(BTreeMap::new, |mut a, b| {
            for (kind, totals) in b {
                a.entry(kind).or_default().add(totals);
            }
            Ok(a)
        });
    // Several threads may each meet a bad line: name the first one, whichever thread saw it.
    let kinds = match kinds {
        Ok(kinds) => kinds,
        Err(_) => return Err(first_bad_line(path, &lines)),
    };
    Ok(Summary {
        input: relative_name(path),
        day: path.parent().and_then(Path::file_name).map_or_else(String::new, |d| d.to_string_lossy().into_owned()),
        rows: lines.len() as u64,
        bytes: text.len() as u64,
        kinds,
    })
}

/// The lines of an event file, or the error that names its last line when it was cut short.
fn event_lines<'a>(path: &Path, text: &'a [u8]) -> Result<Vec<&'a [u8]>, PipelineError> {
    if !text.is_empty() && !text.ends_with(b"\n") {
        let line = text.iter().filter(|&&b| b == b'\n').count() + 1;
        let problem = "the file ends in the middle of a line (cut short while it was written?)".into();
        return Err(PipelineError::BadInput { path: path.to_path_buf(), line, problem });
    }
    Ok(text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect())
}

fn first_bad_line(path: &Path, lines: &[&[u8]]) -> PipelineError {
    for (k, line) in lines.iter().enumerate() {
        let problem = match serde_json::from_slice::<Event>(line) {
            Err(e) => e.to_string(),
            Ok(event) if event.ts.len() < 10 => format!("timestamp {:?} has no date", event.ts),
            Ok(_) => continue,
        };
        return PipelineError::BadInput { path: path.to_path_buf(), line: k + 1, problem };
    }
    unreachable!("first_bad_line is called after a line failed")
}

/// `day/part-NN.jsonl`: the file's name with its folder.
fn relative_name(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match path.parent().and_then(Path::file_name) {
        Some(day) => format!("{}/{name}", day.to_string_lossy()),
        None => name,
    }
}

/// Where the per-file step writes the summary of `input` in `out`:
/// `out/2026-11-01_part-03.json` (the name Luigi's and Airflow's pipelines use too).
pub fn summary_path(out: &Path, input: &Path) -> PathBuf {
    let stem = input.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match input.parent().and_then(Path::file_name) {
        Some(day) => out.join(format!("{}_{stem}.json", day.to_string_lossy())),
        None => out.join(format!("{stem}.json")),
    }
}

/// What a step did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// It wrote its output.
    Done,
    /// Its output was already complete: nothing to do.
    Skipped,
}

/// The per-file step: summarises `input` into `output` (JSON), atomically, unless `output`
/// already holds this input's complete summary. Temporary files a killed run left are removed.
///
/// # Errors
/// As [`summarize`], and when `output` cannot be written.
pub fn summarize_file(input: &Path, output: &Path) -> Result<Outcome, PipelineError> {
    if read_summary(output).is_ok_and(|s| s.input == relative_name(input)) {
        return Ok(Outcome::Skipped);
    }
    remove_stale_temporaries(output);
    let summary = summarize(input)?;
    let text = serde_json::to_string_pretty(&summary).expect("a summary serialises");
    write_atomically(output, text.as_bytes())?;
    Ok(Outcome::Done)
}

/// A summary written by [`summarize_file`].
///
/// # Errors
/// When the file is missing or is not a summary.
pub fn read_summary(path: &Path) -> Result<Summary, PipelineError> {
    read_json(path)
}

/// One of the steps' JSON outputs; a file that does not parse is bad input, with its line.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, PipelineError> {
    let text = fs::read_to_string(path).map_err(PipelineError::io("reading", path))?;
    serde_json::from_str(&text).map_err(|e| PipelineError::BadInput { path: path.to_path_buf(), line: e.line(), problem: e.to_string() })
}

/// Writes `bytes` to `path` so that `path` holds either its old content or all of `bytes`,
/// whatever happens meanwhile: into `.<name>.tmp-<pid>-<n>` beside it, synced, then renamed over
/// it, and the folder synced so that the rename survives a power cut.
///
/// # Errors
/// When the folder cannot be written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PipelineError> {
    let temporary = temporary_name(path);
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|source| {
        let _ = fs::remove_file(&temporary);
        PipelineError::Io { what: "writing", path: path.to_path_buf(), source }
    })
}

/// `.<name>.tmp-<pid>-<n>`: its own to each write, in this process and in others.
fn temporary_name(path: &Path) -> PathBuf {
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Removes the temporary files that runs killed mid-write left beside `path`: those of
/// processes that no longer exist (a live run's are its own business).
fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(writer) = file.strip_prefix(&prefix).and_then(|rest| rest.split('-').next()) else { continue };
        if !Path::new("/proc").join(writer).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// What the partition step wrote for one input: its manifest, written after every part.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Partitioned {
    /// The input, as `day/part-NN.jsonl`.
    pub input: String,
    /// Lines written per kind of event, each kind into its own partition folder.
    pub parts: BTreeMap<String, u64>,
}

/// Where the partition step writes the events of `kind` from `input`:
/// `out/kind=buy/2026-11-01_part-03.jsonl` (a folder per value of the key, as Hive, Spark and
/// polars lay out partitioned data, so that a later step reads one kind without the others).
pub fn partition_path(out: &Path, kind: &str, input: &Path) -> PathBuf {
    summary_path(&out.join(format!("kind={kind}")), input).with_extension("jsonl")
}

/// Where the partition step writes its manifest for `input`: `out/_manifests/<day>_<stem>.json`.
pub fn manifest_path(out: &Path, input: &Path) -> PathBuf {
    summary_path(&out.join("_manifests"), input)
}

/// The partition step: splits `input`'s events by kind into [`partition_path`]s, the lines
/// unchanged, parsed in parallel.
///
/// A step with several outputs cannot rename them all at once. Each part is written
/// atomically, and the step's manifest ([`manifest_path`]: the parts and their line counts) is
/// written last: the step is complete exactly when its manifest exists, as Hadoop's `_SUCCESS`
/// file marks a complete output folder. A re-run skips an input whose manifest and parts are
/// there; a run killed before its manifest is redone whole, its parts rewritten.
///
/// # Errors
/// As [`summarize`] for a bad line (its file and line); a kind that cannot name a folder; a
/// part or the manifest not written.
pub fn partition_file(input: &Path, out: &Path) -> Result<Outcome, PipelineError> {
    let manifest = manifest_path(out, input);
    let complete = |m: &Partitioned| {
        m.input == relative_name(input) && m.parts.keys().all(|kind| partition_path(out, kind, input).is_file())
    };
    if read_manifest(&manifest).is_ok_and(|m| complete(&m)) {
        return Ok(Outcome::Skipped);
    }
    let text = fs::read(input).map_err(PipelineError::io("reading", input))?;
    let lines = event_lines(input, &text)?;
    // Each thread groups its share of the lines by kind, keeping their order; then the groups
    // are joined in the file's order. A bad line is looked for again in order, to name the first.
    let by_kind = lines
        .par_iter()
        .enumerate()
        .try_fold(BTreeMap::<&str, Vec<usize>>::new, |mut kinds, (k, line)| {
            kinds.entry(partition_key(line).map_err(drop)?).or_default().push(k);
            Ok(kinds)
        })
        .try_reduce(BTreeMap::new, |mut a, b| {
            for (kind, mut rows) in b {
                a.entry(kind).or_default().append(&mut rows);
            }
            Ok(a)
        })
        .map_err(|()| {
            let (k, problem) =
                lines.iter().enumerate().find_map(|(k, line)| partition_key(line).err().map(|p| (k, p))).expect("a line failed");
            PipelineError::BadInput { path: input.to_path_buf(), line: k + 1, problem }
        })?;
    by_kind.par_iter().try_for_each(|(kind, rows)| {
        let part = partition_path(out, kind, input);
        let dir = part.parent().expect("a partition has a folder");
        fs::create_dir_all(dir).map_err(PipelineError::io("creating", dir))?;
        remove_stale_temporaries(&part);
        let mut bytes = Vec::with_capacity(rows.len() * 64);
        for &k in rows {
            bytes.extend_from_slice(lines[k]);
            bytes.push(b'\n');
        }
        write_atomically(&part, &bytes)
    })?;
    let written = Partitioned {
        input: relative_name(input),
        parts: by_kind.iter().map(|(kind, rows)| ((*kind).to_string(), rows.len() as u64)).collect(),
    };
    let dir = manifest.parent().expect("a manifest has a folder");
    fs::create_dir_all(dir).map_err(PipelineError::io("creating", dir))?;
    remove_stale_temporaries(&manifest);
    write_atomically(&manifest, serde_json::to_string_pretty(&written).expect("a manifest serialises").as_bytes())?;
    Ok(Outcome::Done)
}

/// The kind of one line, which names its partition's folder, or why it cannot.
fn partition_key(line: &[u8]) -> Result<&str, String> {
    let event: Event = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    if event.kind.is_empty() || !event.kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(format!("kind {:?} cannot name a partition folder", event.kind));
    }
    Ok(event.kind)
}

/// A manifest written by [`partition_file`].
///
/// # Errors
/// When the file is missing or is not a manifest.
pub fn read_manifest(path: &Path) -> Result<Partitioned, PipelineError> {
    read_json(path)
}

/// The whole workflow's result: totals per kind and per day, and which inputs made them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The inputs summed, each once.
    pub inputs: Vec<String>,
    /// Events in all.
    pub rows: u64,
    /// Bytes read in all.
    pub bytes: u64,
    /// Totals per kind of event.
    pub kinds: BTreeMap<String, Totals>,
    /// Events per day.
    pub days: BTreeMap<String, u64>,
}

/// Adds up summaries.
///
/// # Errors
/// [`PipelineError::Duplicate`] when one input appears twice.
pub fn aggregate(summaries: &[Summary]) -> Result<Report, PipelineError> {
    let mut report = Report::default();
    for summary in summaries {
        if report.inputs.contains(&summary.input) {
            return Err(PipelineError::Duplicate(summary.input.clone()));
        }
        report.inputs.push(summary.input.clone());
        report.rows += summary.rows;
        report.bytes += summary.bytes;
        *report.days.entry(summary.day.clone()).or_default() += summary.rows;
        for (kind, totals) in &summary.kinds {
            report.kinds.entry(kind.clone()).or_default().add(*totals);
        }
    }
    report.inputs.sort();
    Ok(report)
}

/// The aggregate step: every `*.json` summary in `summaries` into `output`, atomically.
///
/// # Errors
/// A summary that cannot be read, an input summarised twice, or `output` not written.
pub fn aggregate_folder(summaries: &Path, output: &Path) -> Result<Report, PipelineError> {
    let mut paths: Vec<PathBuf> = fs::read_dir(summaries)
        .map_err(PipelineError::io("reading", summaries))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !hidden(p))
        .collect();
    paths.sort();
    let summaries: Vec<Summary> = paths.iter().map(|p| read_summary(p)).collect::<Result<_, _>>()?;
    let report = aggregate(&summaries)?;
    write_atomically(output, serde_json::to_string_pretty(&report).expect("a report serialises").as_bytes())?;
    Ok(report)
}

fn hidden(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

impl Report {
    /// Reads a report written by [`aggregate_folder`].
    ///
    /// # Errors
    /// When the file is missing or is not a report.
    pub fn read(path: &Path) -> Result<Self, PipelineError> {
        read_json(path)
    }

    /// A table: one row per kind of event.
    pub fn table(&self) -> Table {
        let mut table = Table::new(["kind", "events", "amount"])
            .title(format!("{} events from {} files ({})", self.rows, self.inputs.len(), format_bytes(self.bytes)));
        for (kind, totals) in &self.kinds {
            table.push_row([kind.clone(), totals.count.to_string(), format!("{:.2}", totals.amount)]);
        }
        table
    }
}

/// Makes the next `times` runs of the step on `input` fail, as a flaky disk or network share
/// would: the lessons and tests use it to watch retries. The fault is a file beside the input
/// (`.<name>.fault`), so it reaches the step whichever process or scheduler runs it.
///
/// # Errors
/// When the file cannot be written.
pub fn plant_fault(input: &Path, times: u32) -> Result<(), PipelineError> {
    write_atomically(&fault_file(input), times.to_string().as_bytes())
}

fn fault_file(input: &Path) -> PathBuf {
    let name = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    input.with_file_name(format!(".{name}.fault"))
}

fn take_planted_fault(input: &Path) -> Result<(), PipelineError> {
    let file = fault_file(input);
    let Ok(text) = fs::read_to_string(&file) else { return Ok(()) };
    let left: u32 = text.trim().parse().unwrap_or(0);
    if left == 0 {
        let _ = fs::remove_file(&file);
        return Ok(());
    }
    if left == 1 {
        let _ = fs::remove_file(&file);
    } else {
        write_atomically(&file, (left - 1).to_string().as_bytes())?;
    }
    Err(PipelineError::Planted { path: input.to_path_buf(), left: left - 1 })
}

/// Cuts `input` in the middle of its last line, as a writer killed mid-write would leave it
/// (the bad-input demos). [`crate::events::EventSet::generate`] writes it whole again.
///
/// # Errors
/// When the file cannot be read or written.
pub fn cut_short(input: &Path) -> Result<(), PipelineError> {
    let text = fs::read(input).map_err(PipelineError::io("reading", input))?;
    let keep = text.len().saturating_sub(20);
    fs::write(input, &text[..keep]).map_err(PipelineError::io("writing", input))
}
