"""The course's workflow over the event files (notebook 52), for a real Airflow.

wait for the event set -> discover the day's files -> summarise each file (one mapped task
per file, the Rust step, retried) -> aggregate -> report

A file whose step fails for good does not stop the others: the aggregate sums the summaries
there are, and the report names the files left out (failed.json), then fails the run.

Each run stands for one day (its logical date): a scheduled or backfilled run reads that day's
folder; a run triggered by hand with no date reads every day. The steps run in the pool
`parcours_cores`, one slot per core: each step already uses every core (rayon), so more at once
would only share them. The Rust program's path comes from PARCOURS_PIPELINE_BIN, which the
course sets when it starts Airflow.
"""

import json
import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import dag, get_current_context, task

PROGRAM = os.environ.get("PARCOURS_PIPELINE_BIN", "parcours-pipeline")
DATA = Path(os.environ.get("PARCOURS_HOME", Path.home() / ".cache" / "parcours")) / "data" / "pipelines"


def folders(params):
    """The run's input and output folders: the day's, or every day's."""
    events = Path(params.get("events") or DATA / "events")
    out = Path(params.get("out") or DATA / "airflow")
    logical = get_current_context().get("logical_date")
    day = logical.strftime("%Y-%m-%d") if logical is not None else "all"
    return events, out / day, day


@dag(
    dag_id="parcours_events",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    params={"events": "", "out": ""},
    tags=["parcours"],
)
def parcours_events():
    wait = FileSensor(
        task_id="wait_for_events",
        filepath="{{ params.events or '" + str(DATA / "events") + "' }}/events.json",
        poke_interval=2,
        timeout=300,
    )

    @task
    def discover(params=None):
        events, out, day = folders(params)
        pattern = "2026-*/part-*.jsonl" if day == "all" else f"{day}/part-*.jsonl"
        files = sorted(str(p) for p in events.glob(pattern))
        if not files:
            raise FileNotFoundError(f"no event files for {day} in {events}")
        (out / "summaries").mkdir(parents=True, exist_ok=True)
        return files

    @task.bash(pool="parcours_cores", retries=2, retry_delay=timedelta(seconds=2))
    def summarize(path, params=None):
        _, out, _ = folders(params)
        name = f"{Path(path).parent.name}_{Path(path).stem}.json"
        return f"'{PROGRAM}' summarize '{path}' '{out / 'summaries' / name}'"

    # all_done: the summaries of the files that went through are summed even when one failed.
    @task.bash(pool="parcours_cores", trigger_rule="all_done")
    def aggregate(params=None):
        _, out, _ = folders(params)
        return f"'{PROGRAM}' aggregate '{out / 'summaries'}' '{out / 'report.json'}'"

    @task
    def report(files, params=None):
        _, out, day = folders(params)
        totals = json.loads((out / "report.json").read_text())
        summed = set(totals["inputs"])
        failed = [path for path in files if f"{Path(path).parent.name}/{Path(path).name}" not in summed]
        partial = out / ".failed.json.tmp"
        partial.write_text(json.dumps(failed))
        partial.replace(out / "failed.json")
        print(f"{day}: {totals['rows']} events from {len(summed)} files")
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(files)} files failed, left out of the report: "
                               + ", ".join(failed))
        return {"day": day, "rows": totals["rows"], "files": len(summed)}

    files = discover()
    wait >> files
    summaries = summarize.expand(path=files)
    summaries >> aggregate() >> report(files)


parcours_events()
