"""The course's pipeline as Luigi tasks (notebook 51): one Summarize per event file, then Report.

Targets decide what runs: Luigi asks each task whether its output exists, and a complete task
is not run again, so a re-run redoes only what is missing. The steps themselves are the Rust
program `parcours-pipeline` (its path in PARCOURS_PIPELINE_BIN), which writes its outputs
atomically.

    python parcours_luigi.py EVENTS_DIR OUT_DIR WORKERS EVENT_LOG

runs the pipeline with Luigi's local scheduler and appends one JSON line per task event
(complete, start, success, failure) to EVENT_LOG, which the notebook reads.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import luigi

PROGRAM = os.environ.get("PARCOURS_PIPELINE_BIN", "parcours-pipeline")


def summary_name(path):
    """`2026-11-01/part-03.jsonl` -> `2026-11-01_part-03.json`."""
    path = Path(path)
    return f"{path.parent.name}_{path.stem}.json"


def run_step(*args):
    """Runs one Rust step; its error message (file and line of a bad input) becomes the task's."""
    done = subprocess.run([PROGRAM, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or f"{PROGRAM} exited with {done.returncode}")


class EventFile(luigi.ExternalTask):
    """An input file: made by someone else, complete when it exists."""

    path = luigi.Parameter()

    def output(self):
        return luigi.LocalTarget(self.path)


class Summarize(luigi.Task):
    """One file's totals per kind of event."""

    path = luigi.Parameter()
    out = luigi.Parameter()

    def requires(self):
        return EventFile(path=self.path)

    def output(self):
        return luigi.LocalTarget(str(Path(self.out) / "summaries" / summary_name(self.path)))

    def run(self):
        Path(self.output().path).parent.mkdir(parents=True, exist_ok=True)
        run_step("summarize", self.path, self.output().path)


class Report(luigi.Task):
    """Every file's summary added up."""

    events = luigi.Parameter()
    out = luigi.Parameter()

    def requires(self):
        files = sorted(Path(self.events).glob("2026-*/part-*.jsonl"))
        return [Summarize(path=str(f), out=self.out) for f in files]

    def output(self):
        return luigi.LocalTarget(str(Path(self.out) / "report.json"))

    def run(self):
        run_step("aggregate", str(Path(self.out) / "summaries"), self.output().path)


def main():
    events, out, workers, log_path = sys.argv[1:5]
    log = open(log_path, "a", buffering=1)

    def record(kind):
        def handler(task, *rest):
            error = str(rest[0]) if kind == "failure" and rest else None
            log.write(json.dumps({
                "event": kind, "task": task.task_id, "family": task.task_family,
                "time": time.time(), "pid": os.getpid(), "error": error,
            }) + "\n")
        return handler

    for kind, event in [("complete", luigi.Event.DEPENDENCY_PRESENT), ("start", luigi.Event.START),
                        ("success", luigi.Event.SUCCESS), ("failure", luigi.Event.FAILURE)]:
        luigi.Task.event_handler(event)(record(kind))
    result = luigi.build([Report(events=events, out=out)], local_scheduler=True,
                         workers=int(workers), detailed_summary=True, log_level="WARNING")
    print(result.summary_text)
    sys.exit(0 if result.status in (luigi.LuigiStatusCode.SUCCESS,
                                    luigi.LuigiStatusCode.SUCCESS_WITH_RETRY) else 1)


if __name__ == "__main__":
    main()
