"""What the figures were measured on: machine, load, versions. Read from /proc and the tools themselves."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
from pathlib import Path

from bench.loadwrk import wrk_version
from bench.servers import REPO, WEROBOT_VENV


def _first(path: str, key: str) -> str:
    for line in Path(path).read_text().splitlines():
        if line.startswith(key):
            return line.split(":", 1)[1].strip()
    return "?"


def _run(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30, cwd=REPO)
    except OSError:
        return "?"
    return (out.stdout or out.stderr).strip()


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def _dist(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "-"


def _werobot_versions() -> dict[str, str]:
    py = WEROBOT_VENV / "bin" / "python"
    if not py.exists():
        return {}
    code = ("import importlib.metadata as m;"
            "print(' '.join(m.version(n) for n in ('WeRoBot','gunicorn','bottle')))")
    parts = _run([str(py), "-c", code]).split()
    return dict(zip(("werobot", "gunicorn", "bottle"), parts, strict=False)) if len(parts) == 3 else {}


def describe() -> dict[str, object]:
    commit = _run(["git", "rev-parse", "--short", "HEAD"])
    dirty = bool(_run(["git", "status", "--porcelain", "--", "bot", "storage", "handlers", "dialogs"]))
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _first("/proc/cpuinfo", "model name"),
        "mem_total": _first("/proc/meminfo", "MemTotal"),
        "kernel": platform.release(),
        "os": _os_name(),
        "loadavg_start": loadavg(),
        "python": platform.python_version(),
        "gradbot_commit": commit + (" (+ uncommitted changes)" if dirty else ""),
        "versions": {
            "wrk": wrk_version(),
            "redis-server": _run(["redis-server", "--version"]).split(" sha=")[0],
            "aiohttp": _dist("aiohttp"), "wechatpy": _dist("wechatpy"), "redis-py": _dist("redis"),
            "hiredis": _dist("hiredis"), "uvloop": _dist("uvloop"), "cryptography": _dist("cryptography"),
            **_werobot_versions(),
        },
    }


def _os_name() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def host_cpu_ticks() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies summed over all CPUs, from the first line of /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    steal = fields[7] if len(fields) > 7 else 0
    total = sum(fields[:8])
    return total - idle - steal, steal, total
