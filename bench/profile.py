"""Where a gradbot worker's CPU goes under load: py-spy samples one worker while wrk drives it.

    python -m bench profile                 # 1 worker, plain mode, 15 s of samples
    python -m bench profile --safe --duration 20

py-spy (``pip install py-spy`` into the project venv) attaches to the running worker, so the server runs
exactly as in the load benchmark. Only samples of the thread holding the GIL count (``--gil``), so shares
are of Python-level CPU; the per-thread split from /proc shows how much runs outside it (e.g. SQLite in
aiosqlite's threads).
Prints self and inclusive shares per function and self shares per library; the raw collapsed stacks are
kept next to the results for a flame graph.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench import loadwrk, pipeline, servers, verify

# py-spy prints paths relative to their sys.path entry, so a path's first part names its library.
AREAS = (
    ("aiohttp/", "aiohttp"), ("multidict/", "aiohttp"), ("yarl/", "aiohttp"), ("redis/", "redis-py"),
    ("hiredis", "redis-py"), ("wechatpy/", "wechatpy"), ("xmltodict", "xmltodict"), ("xml/", "xml (stdlib)"),
    ("cryptography/", "cryptography"), ("jinja2/", "jinja2"), ("markupsafe/", "jinja2"),
    ("transitions/", "transitions"), ("sqlalchemy/", "sqlalchemy"), ("aiosqlite/", "aiosqlite"),
    ("greenlet", "sqlalchemy"), ("asyncio/", "asyncio"), ("uvloop/", "uvloop"),
    ("prometheus_client/", "prometheus_client"), ("logging/", "logging"), ("json/", "json"),
    ("bot/", "gradbot bot/"), ("storage/", "gradbot storage/"), ("dialogs/", "gradbot dialogs/"),
    ("handlers/", "gradbot handlers/"),
)


def area(frame: str) -> str:
    path = frame.partition(" (")[2]
    for prefix, name in AREAS:
        if path.startswith(prefix):
            return name
    return "other (stdlib, C)"


def function(frame: str) -> str:
    """``name (path:line)`` → ``name (path)``, with the path shortened to the library or repo part."""
    name, _, rest = frame.partition(" (")
    path = rest.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def parse(raw: str) -> tuple[Counter[str], Counter[str], Counter[str], int]:
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f.strip()]
        if frames[0].startswith("process ") or frames[0].startswith("thread "):
            frames = frames[1:]
        if not frames:
            continue
        total += n
        own[function(frames[-1])] += n
        areas[area(frames[-1])] += n
        for fn in {function(f) for f in frames}:
            incl[fn] += n
    return own, incl, areas, total


def _ours(incl: Counter[str]) -> Counter[str]:
    roots = ("(bot/", "(storage/", "(dialogs/", "(handlers/")
    return Counter({k: v for k, v in incl.items() if any(r in k for r in roots) and "(bot/cli" not in k
                    and "(bot/commands/" not in k})


def table(title: str, counts: Counter[str], total: int, top: int) -> str:
    lines = [title]
    for name, n in counts.most_common(top):
        lines.append(f"  {100 * n / total:5.1f} %  {name}")
    return "\n".join(lines)


def run(workers: int = 1, safe: bool = False, duration: float = 15.0, rate: int = 250,
        out_dir: Path | None = None, top: int = 25) -> str:
    pyspy = shutil.which("py-spy") or str(servers.REPO / ".venv" / "bin" / "py-spy")
    if not Path(pyspy).exists():
        raise SystemExit("py-spy is missing: .venv/bin/pip install py-spy")
    loadwrk.require_wrk()
    out_dir = out_dir or (servers.BENCH / "results")
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gradbot-profile-"))
    variant = servers.Variant(f"gradbot-{workers}p{'-safe' if safe else ''}", "gradbot", workers, safe=safe)
    bench = pipeline.Bench(pipeline.Config(duration=duration + 4), work, out_dir / "logs")
    running = servers.start(variant, bench.env, out_dir / "logs")
    try:
        verify.check(running.url, pipeline.account(variant))
        bench.warm(running)
        raw, threads = _sample(bench, running, pyspy, duration, rate, work)
    finally:
        servers.stop(running)
        bench.cleanup()
    stamp = time.strftime("%Y-%m-%d")
    (out_dir / f"{stamp}-profile-{variant.name}.collapsed").write_text(raw)
    own, incl, areas, total = parse(raw)
    report = "\n\n".join([
        f"py-spy --gil, {variant.label}, {duration:g} s at {rate} Hz, {total} samples holding the GIL",
        threads,
        table("self time by library:", areas, total, len(areas)),
        table(f"self time, top {top} functions:", own, total, top),
        table(f"inclusive time, top {top} functions:", incl, total, top),
        table(f"inclusive time, top {top} gradbot functions:", _ours(incl), total, top),
    ])
    (out_dir / f"{stamp}-profile-{variant.name}.txt").write_text(report + "\n")
    return report


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _sample(bench: pipeline.Bench, running: servers.Running, pyspy: str, duration: float, rate: int,
            work: Path) -> tuple[str, str]:
    workers = [p for p in running.tree() if b"spawn_main" in _cmdline(p)] or [running.proc.pid]
    script = bench.script(running.variant, bench.cfg.duration)
    load = subprocess.Popen(["wrk", "-t1", f"-c{bench.cfg.connections}", f"-d{round(bench.cfg.duration)}s",
                             "-s", str(script), running.url], stdout=subprocess.DEVNULL)
    time.sleep(1.5)
    out = work / "pyspy.txt"
    threads0 = thread_cpu(workers[0])
    # --gil: only samples of the thread holding the GIL, i.e. Python-level CPU. Without it, threads
    # blocked in a queue (aiosqlite's worker threads) count as busy.
    subprocess.run([pyspy, "record", "-p", str(workers[0]), "-d", str(round(duration)), "-r", str(rate),
                    "--gil", "-f", "raw", "-o", str(out)], check=True, capture_output=True)
    threads1 = thread_cpu(workers[0])
    load.wait(timeout=bench.cfg.duration + 30)
    return out.read_text(), _thread_summary(workers[0], threads0, threads1)


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU µs per thread of ``pid`` (utime + stime from /proc/PID/task/TID/stat)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        out[int(tid)] = (int(fields[11]) + int(fields[12])) * servers.TICK_US
    return out


def _thread_summary(pid: int, before: dict[int, float], after: dict[int, float]) -> str:
    delta = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    total = sum(delta.values()) or 1.0
    main = delta.get(pid, 0.0)
    busy_others = sorted((d for t, d in delta.items() if t != pid), reverse=True)
    return (f"process CPU by thread (from /proc): main thread {100 * main / total:.1f} %, "
            f"{len(busy_others)} other threads {100 * (total - main) / total:.1f} % "
            f"(largest {', '.join(f'{100 * d / total:.1f} %' for d in busy_others[:4])})")
