"""A lean process that starts the measured children and reports each one's wall time and peak RSS.

Why not start them from ``bench.run`` directly: Linux carries the peak RSS of the image a process replaces at
``exec`` into its ``ru_maxrss``, so a child forked from the harness (which holds boto3, pyarrow, the HTTP server…)
would report at least the harness's own peak. Started from this small interpreter instead, a child's figure is
``max(its own peak, ~10 MB of this process)``.

Protocol: one JSON request per stdin line ``{"cmd": [...], "env": {...}, "cwd": "...", "stdout": path|null,
"stderr": path}``; one JSON reply per line ``{"wall_s", "cpu_s", "user_s", "sys_s", "maxrss_kib",
"returncode"}`` (CPU from ``os.wait4``'s rusage: user + system time of every thread of the child).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any


def run_one(req: dict[str, Any]) -> dict[str, Any]:
    """Start one child, ``os.wait4`` for it, report wall and CPU seconds and its own ``ru_maxrss`` (KiB on Linux)."""
    out_path, err_path = req.get("stdout"), req["stderr"]
    with (
        open(out_path or os.devnull, "wb") as out,
        open(err_path, "wb") as err,
    ):
        started = time.perf_counter()
        proc = subprocess.Popen(req["cmd"], stdout=out, stderr=err, env=req.get("env"), cwd=req.get("cwd"))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    # ru_utime + ru_stime: the child's CPU seconds over all its threads (what a one-vCPU Lambda bills).
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "maxrss_kib": usage.ru_maxrss,
        "returncode": proc.returncode,
    }


def main() -> int:
    """Serve requests until stdin closes."""
    for line in sys.stdin:
        if line.strip():
            sys.stdout.write(json.dumps(run_one(json.loads(line))) + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
