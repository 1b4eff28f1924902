"""Closed-loop load with Debian's wrk (a C client, so the load costs the server little CPU)."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

APT_HINT = "apt-get install -y wrk"


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        sys.exit(f"wrk is not installed. Install Debian's C load generator with:\n    {APT_HINT}")
    return path


def wrk_version() -> str:
    if shutil.which("wrk") is None:
        return "not installed"
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (out.stdout + out.stderr).split("\n", 1)[0].strip()


def run(url: str, script: Path, duration: float, connections: int, threads: int = 1,
        timeout: float = 5.0) -> dict[str, Any]:
    """One wrk run; returns wrk's summary plus its own CPU time (µs) and a ``non2xx``/``errors`` total."""
    # wrk takes whole seconds only.
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", f"--timeout={round(timeout)}s",
           "-s", str(script), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=duration + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout[-500:]}")
    res: dict[str, Any] = json.loads(line[len("WRKJSON "):])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res["client_cpu_us"] = round(cpu * 1e6)
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6) if res["duration_us"] else 0.0
    errs = res["errors"]
    res["non2xx"] = errs["status"]
    res["error_total"] = sum(errs.values())
    return res
