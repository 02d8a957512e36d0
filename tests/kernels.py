"""Start the course kernel and run cells in it, for the tests and the benchmarks."""

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from nbrun import ANSI, KERNEL, PANIC_MARKER, PANIC_MIME, STARTUP_TIMEOUT, wait_until_ready

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kernel"))
from paths import parcours_home  # noqa: E402

HOME = parcours_home()
EVCXR = HOME / "tools" / "bin" / "evcxr_jupyter"


@dataclass
class Outcome:
    """What one cell did: its reply status, its streams, its displayed results."""
    status: str
    stdout: str
    stderr: str
    results: list
    seconds: float

    @property
    def panicked(self):
        return any(PANIC_MIME in r for r in self.results) or PANIC_MARKER in self.stdout

    @property
    def ok(self):
        return self.status == "ok" and not self.panicked

    @property
    def text(self):
        plain = [r.get("text/plain", "") for r in self.results]
        return ANSI.sub("", self.stdout + self.stderr + "".join(plain))


class Kernel:
    """A running course kernel with a client, stopped on exit from a `with` block."""

    def __init__(self, name=KERNEL, spec_dirs=None, stderr=None, cwd=None):
        self.manager = KernelManager(kernel_name=name)
        if spec_dirs:
            specs = KernelSpecManager()
            specs.kernel_dirs = [str(d) for d in spec_dirs]
            self.manager.kernel_spec_manager = specs
        started = time.monotonic()
        options = {"stderr": stderr} if stderr else {}
        if cwd:
            options["cwd"] = str(cwd)  # relative `:dep` paths resolve from there
        self.manager.start_kernel(**options)
        self.client = self.manager.client()
        self.client.start_channels()
        try:
            wait_until_ready(lambda: self.client.wait_for_ready(timeout=STARTUP_TIMEOUT),
                             self.manager.provisioner.pid)
        except Exception:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - started

    def run(self, code, timeout=600):
        streams = {"stdout": [], "stderr": []}
        results = []

        def hook(msg):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                streams[content["name"]].append(content["text"])
            elif kind in ("execute_result", "display_data"):
                results.append(content["data"])
            elif kind == "error":
                streams["stderr"].append("\n".join(content.get("traceback", [])))

        started = time.monotonic()
        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=hook)
        return Outcome(reply["content"]["status"], "".join(streams["stdout"]),
                       "".join(streams["stderr"]), results, time.monotonic() - started)

    def stop(self):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()


def kernelspec_like_course(directory, name, env):
    """Writes a kernelspec like the course's, with `env` added; returns its kernels folder."""
    course = Path(KernelSpecManager().get_kernel_spec(KERNEL).resource_dir, "kernel.json")
    spec = json.loads(course.read_text())
    spec["env"] = {**spec.get("env", {}), **env}
    spec["display_name"] = name
    folder = Path(directory) / "kernels"
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / "kernel.json").write_text(json.dumps(spec))
    return folder
