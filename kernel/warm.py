"""Start the course kernel once and run a first cell, so later starts find everything built.

The first start on a machine compiles the support crate and its dependencies inside the kernel
(a few minutes); later starts reuse them and answer in seconds. Exits non-zero, with the
kernel's message, if the first cell fails.
"""

import sys
import threading
import time

from jupyter_client.manager import start_new_kernel

from paths import KERNEL, use_this_clones_kernel
STARTUP_TIMEOUT = 1800


def tick(done, started):
    while not done.wait(30):
        print(f"    still compiling, {time.monotonic() - started:.0f} s so far...", flush=True)


def main():
    use_this_clones_kernel()
    started = time.monotonic()
    done = threading.Event()
    threading.Thread(target=tick, args=(done, started), daemon=True).start()
    try:
        manager, client = start_new_kernel(kernel_name=KERNEL, startup_timeout=STARTUP_TIMEOUT)
    finally:
        done.set()
    outputs = []
    try:
        reply = client.execute_interactive(
            "parcours::welcome();", timeout=600,
            output_hook=lambda msg: outputs.append(msg["content"].get("text", "")))
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    text = "".join(outputs).strip()
    print(f"    kernel ready in {time.monotonic() - started:.1f} s: {text.splitlines()[0] if text else ''}")
    if reply["content"]["status"] != "ok" or "panicked" in text:
        sys.exit(f"the course kernel started, but its first cell failed:\n{text}")


if __name__ == "__main__":
    main()
