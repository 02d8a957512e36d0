"""Module 4 benchmark: tasks per second through a task queue, side by side in one run.

No-op tasks, pushed in one batch to workers that are already up, timed from the first push to
the last result; 1, 2 and 4 worker processes, each running one task at a time (Celery's
`--pool=solo`, apalis' concurrency 1), then apalis at concurrency 8:

- apalis (the course's `parcours-queue-worker`) on Redis;
- Celery 5 on the **same** Redis server (another database number), its own worker processes;
- apalis on an SQLite file;
- Module 2's manager queue (put, get, acknowledge over its RPC), for scale.

Goal: apalis on Redis >= Celery on Redis, worker for worker.

    ./course bench queues      # or: python tests/bench/module4_queues.py [--tasks N]
"""

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "kernel"))
from paths import parcours_home  # noqa: E402

HOME = parcours_home()
WORKERS = (1, 2, 4)

CELERY_TASKS = """
import os
from pathlib import Path
from celery import Celery

password = Path(os.environ["BENCH_PASSWORD_FILE"]).read_text().strip()
url = f"redis://:{password}@127.0.0.1:{os.environ['BENCH_REDIS_PORT']}"
app = Celery("bench", broker=f"{url}/1", backend=f"{url}/2")
app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json",
                task_acks_late=True, worker_prefetch_multiplier=10, task_default_queue="bench",
                broker_connection_retry_on_startup=True, result_expires=3600)


@app.task(name="bench.noop")
def noop(i):
    return i
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(folder):
    """redis-server as the course runs it: loopback, a password in a 0600 file, AOF everysec."""
    if not shutil.which("redis-server"):
        sys.exit("redis-server is not installed: ./course setup installs it")
    folder.mkdir(mode=0o700)
    password = secrets.token_hex(32)
    password_file = folder / "password"
    password_file.write_text(password)
    password_file.chmod(0o600)
    port = free_port()
    config = folder / "redis.conf"
    config.write_text(f"bind 127.0.0.1\nport {port}\ndaemonize no\nlogfile {folder}/redis.log\n"
                      f"dir {folder}\nsave \"\"\nappendonly yes\nappendfsync everysec\n"
                      f"requirepass {password}\n")
    config.chmod(0o600)
    server = subprocess.Popen(["redis-server", str(config)], stdout=subprocess.DEVNULL)
    for _ in range(500):
        reply = subprocess.run(["redis-cli", "-p", str(port), "--no-auth-warning", "-a", password,
                                "PING"], capture_output=True, text=True).stdout
        if "PONG" in reply:
            return server, port, password_file
        time.sleep(0.02)
    server.kill()
    sys.exit("redis-server did not answer: see " + str(folder / "redis.log"))


def figure(output, name):
    for line in output.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    sys.exit(f"no `{name}` in the output:\n{output}")


def apalis(example, broker_args, workers, tasks, concurrency=1):
    output = subprocess.run([str(example), *broker_args, "--workers", str(workers), "--tasks",
                             str(tasks), "--concurrency", str(concurrency)],
                            check=True, capture_output=True, text=True).stdout
    return figure(output, "tasks_per_s")


def celery_app(folder, port, password_file):
    sys.path.insert(0, str(folder))
    os.environ.update(BENCH_REDIS_PORT=str(port), BENCH_PASSWORD_FILE=str(password_file))
    import celery_bench  # noqa: E402  (written into `folder` by main)
    return celery_bench


def celery_pushes(folder, port, password_file, tasks):
    """`noop.delay()` alone, no worker running: the producer's own rate; then the queue is purged."""
    bench = celery_app(folder, port, password_file)
    started = time.perf_counter()
    for i in range(tasks):
        bench.noop.delay(i)
    rate = tasks / (time.perf_counter() - started)
    bench.app.control.purge()
    return rate


def celery(folder, port, password_file, workers, tasks):
    env = dict(os.environ, BENCH_REDIS_PORT=str(port), BENCH_PASSWORD_FILE=str(password_file),
               PYTHONPATH=str(folder))
    celery_bench = celery_app(folder, port, password_file)
    from celery.result import ResultSet
    app = celery_bench.app
    celery_program = Path(sys.executable).with_name("celery")
    processes = [subprocess.Popen(
        [str(celery_program), "-A", "celery_bench", "worker", "--pool=solo", "-n",
         f"bench{k}-{workers}@%h", "-Q", "bench", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--loglevel=WARNING"], cwd=folder, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for k in range(workers)]
    try:
        deadline = time.monotonic() + 120
        while len(app.control.ping(timeout=0.5) or []) < workers:
            if time.monotonic() > deadline:
                sys.exit(f"{workers} Celery workers did not answer within 2 minutes")
        started = time.perf_counter()
        results = ResultSet([celery_bench.noop.delay(i) for i in range(tasks)])
        results.join_native(timeout=600)
        return tasks / (time.perf_counter() - started)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5000, help="tasks per measure (default 5000)")
    args = parser.parse_args()
    target = Path(os.environ.get("CARGO_TARGET_DIR") or HOME / "target")
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    print("building the course's worker and the benchmark programs (release)...", flush=True)
    # As ./course setup builds them: the workspace but the data engines' crates (KERNEL_ONLY).
    subprocess.run(["cargo", "build", "--release", "-q", "--workspace", "--bins",
                    "--exclude", "parcours-frames", "--exclude", "parcours-ballista"],
                   cwd=REPO, env=env, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "parcours-queue", "--example",
                    "queue_throughput", "-p", "parcours-cluster", "--example",
                    "cluster_throughput"], cwd=REPO, env=env, check=True)
    examples = target / "release" / "examples"
    folder = Path(tempfile.mkdtemp(prefix="parcours-bench-queues-"))
    server = None
    try:
        (folder / "celery_bench.py").write_text(CELERY_TASKS)
        server, port, password_file = start_redis(folder / "redis")
        redis_args = ["--redis-port", str(port), "--password-file", str(password_file)]
        module2 = subprocess.run([str(examples / "cluster_throughput"), str(args.tasks)],
                                 check=True, capture_output=True, text=True).stdout
        rows = []
        for workers in WORKERS:
            print(f"  {workers} worker(s)...", flush=True)
            row = {
                "apalis, Redis": apalis(examples / "queue_throughput", redis_args, workers, args.tasks),
                "Celery, Redis": celery(folder, port, password_file, workers, args.tasks),
                "apalis, SQLite": apalis(examples / "queue_throughput", ["--sqlite"], workers,
                                         args.tasks),
                "apalis, Redis, concurrency 8": apalis(examples / "queue_throughput", redis_args,
                                                       workers, args.tasks, concurrency=8),
            }
            rate = module2_rate(module2, workers)
            if rate:
                row["Module 2 manager"] = rate
            rows.append((workers, row))
        columns = list(rows[0][1])
        print(f"\ntasks per second, {args.tasks} no-op tasks, workers already up "
              f"({os.cpu_count()} CPUs):")
        print(f"{'workers':>8} " + " ".join(f"{c:>15}" for c in columns) + f" {'apalis/Celery':>14}")
        for workers, row in rows:
            ratio = row["apalis, Redis"] / row["Celery, Redis"]
            print(f"{workers:>8} " + " ".join(f"{row[c]:>15,.0f}" if c in row else f"{'':>15}"
                                             for c in columns) + f" {ratio:>13.1f}x")
        worst = min(row["apalis, Redis"] / row["Celery, Redis"] for _, row in rows)
        pushes = subprocess.run([str(examples / "queue_throughput"), *redis_args,
                                 "--push-one-by-one", "--tasks", str(args.tasks)],
                                check=True, capture_output=True, text=True).stdout
        print(f"\none producer, one call per task, no worker: apalis `push` "
              f"{figure(pushes, 'pushes_per_s'):,.0f}/s, Celery `delay` "
              f"{celery_pushes(folder, port, password_file, args.tasks):,.0f}/s (the columns "
              "above push apalis' tasks in one batch, Celery's one `delay` each: a rate near "
              "Celery's `delay` rate is its producer's)")
        print(f"\ngoal: apalis on Redis >= Celery on Redis, worker for worker: "
              f"{'met' if worst >= 1 else 'NOT met'} (worst ratio {worst:.1f}x)")
    finally:
        if server:
            server.terminate()
            server.wait(timeout=20)
        shutil.rmtree(folder, ignore_errors=True)


def module2_rate(output, clients):
    """Module 2's queue with this many clients, if the example measured it."""
    for line in output.splitlines():
        if line.startswith(f"queue_put_get_ack_tasks_per_s_{clients}_clients "):
            return float(line.split()[1])
    return None


if __name__ == "__main__":
    main()
