"""How long `make demo` takes: start time (demo start → /readyz 200) and fresh-clone install time.

    .venv/bin/python bench/demo_bench.py start [--runs 3]          # existing install, this checkout
    .venv/bin/python bench/demo_bench.py install [--runs 3]        # git clone + make demo, no pip cache

`start` runs ``python -m bot.demo`` from this checkout: one first start on an empty data folder,
then ``--runs`` warm starts on the same folder. `install` clones HEAD into a temp folder and runs
``make demo`` there with an empty pip cache (``PIP_NO_CACHE_DIR=1``: a fresh machine has none),
timing the install (until the venv's stamp file appears) and the whole thing (until /readyz
answers). Each run is stopped with SIGINT to its process group, as Ctrl-C in a terminal does.
Both print a JSON record per run and write them to ``bench/results/<date>-demo.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU used so far by ``root`` and every live descendant (Linux /proc): the work
    the demo needs, whatever else the machine is doing."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:13]) / os.sysconf("SC_CLK_TCK"))
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (ppid, _) in stats.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(stats[pid][1] for pid in tree if pid in stats)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def demo_env(data_dir: Path, prefix: str) -> tuple[dict[str, str], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADBOT_")}
    env.update({"GRADBOT_DEMO_PORT": str(port), "GRADBOT_DEMO_STUB_PORT": str(free_port()),
                "GRADBOT_DEMO_PAY_PORT": str(free_port()), "GRADBOT_DATA_DIR": str(data_dir),
                "GRADBOT_DEMO_PREFIX": prefix})
    return env, port


def run_once(argv: list[str], cwd: Path, env: dict[str, str], port: int, stamp: Path | None = None,
             timeout: float = 900) -> dict[str, Any]:
    log = tempfile.NamedTemporaryFile(prefix="demo-bench-", suffix=".log", delete=False)  # noqa: SIM115
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    record: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    try:
        while not answers(f"http://127.0.0.1:{port}/readyz"):
            if stamp is not None and "install_s" not in record and stamp.exists():
                record["install_s"] = round(time.monotonic() - started, 2)
            if proc.poll() is not None or time.monotonic() - started > timeout:
                raise RuntimeError(f"demo did not come up; log in {log.name}")
            time.sleep(0.05)
        record["ready_s"] = round(time.monotonic() - started, 2)
        record["cpu_s_at_ready"] = round(tree_cpu_seconds(proc.pid), 2)
        while "Ctrl-C stops everything" not in Path(log.name).read_text(errors="replace"):
            time.sleep(0.05)
        record["banner_s"] = round(time.monotonic() - started, 2)
        record["load_after"] = os.getloadavg()[0]
    finally:
        stopping = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(120)
        record["stop_s"] = round(time.monotonic() - stopping, 2)
        record["exit"] = proc.returncode
    return record


def bench_start(runs: int) -> list[dict[str, Any]]:
    out = []
    with tempfile.TemporaryDirectory(prefix="demo-bench-") as tmp:
        for n in range(runs + 1):
            env, port = demo_env(Path(tmp) / "var", f"gbdemobench{os.getpid()}")
            record = run_once([sys.executable, "-m", "bot.demo"], ROOT, env, port)
            record["kind"] = "first start (empty data folder)" if n == 0 else "warm start"
            print(json.dumps(record), flush=True)
            out.append(record)
    return out


def bench_install(runs: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="demo-clone-") as tmp:
            clone = Path(tmp) / "gradbot"
            t0 = time.monotonic()
            subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
            clone_s = time.monotonic() - t0
            env, port = demo_env(clone / "var", f"gbdemobench{os.getpid()}")
            env["PIP_NO_CACHE_DIR"] = "1"
            record = run_once(["make", "demo"], clone, env, port, stamp=clone / ".venv" / ".installed")
            record.update(kind="fresh clone, no pip cache", clone_s=round(clone_s, 2),
                          venv_mb=round(sum(f.stat().st_size for f in (clone / ".venv").rglob("*")
                                            if f.is_file()) / 1e6))
            print(json.dumps(record), flush=True)
            out.append(record)
    return out


def forget(prefix: str) -> None:
    """The runs' Redis keys (the demo keeps them on purpose; a benchmark should not)."""
    import redis

    client = redis.Redis.from_url(os.environ.get("GRADBOT_REDIS_URL", "redis://127.0.0.1:6379/0"))
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("start", "install"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    try:
        records = bench_start(args.runs) if args.what == "start" else bench_install(args.runs)
    finally:
        forget(f"gbdemobench{os.getpid()}")
    warm = [r["ready_s"] for r in records if r["kind"] != "first start (empty data folder)"]
    print(json.dumps({"median_ready_s": statistics.median(warm)}))
    path = ROOT / "bench" / "results" / f"{date.today().isoformat()}-demo.json"
    existing = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps([*existing, {"what": args.what, "records": records}], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
