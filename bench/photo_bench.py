"""Photo check + auto-fix benchmark (issue 4): per-photo time and peak RSS on one core.

    .venv/bin/python bench/photo_bench.py            # 60 × 12 MP, 100 × 480×640, pool comparison
    .venv/bin/python bench/photo_bench.py --quick    # a smoke run, not figures

Cases: a 12 MP phone JPEG (3000×4000 portrait stored sideways with EXIF orientation 6, q92, sensor-like
noise, 1.7 MB) and a 480×640 JPEG, both built from the test fixtures' studio photo. The process pins
itself to one CPU and single-threaded BLAS/OpenMP before numpy loads. Results go to stdout and to
bench/results/<date>-photos.json; docs/benchmarks.md ("Photo checks") records them.
"""

from __future__ import annotations

import os
import sys

# Before numpy / mediapipe load: one core, one thread each, so figures are "per core".
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("GLOG_minloglevel", "2")
CPU = max(os.sched_getaffinity(0))
os.sched_setaffinity(0, {CPU})
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

from bot.services.photos import analyse, check_photo, load_profiles, process_pool  # noqa: E402
from bot.services.photos.face import default_engine  # noqa: E402
from tests.fixtures import photos as ph  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"phone_check_fix": {"median": 300, "p99": 1000}, "small_check": {"median": 150},
           "rss_mb": 400}


def rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that over fork and exec, so a
    spawned worker would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn: Callable[[], object], runs: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return {"runs": runs, "median_ms": round(statistics.median(samples), 1),
            "p99_ms": round(percentile(samples, 0.99), 1), "min_ms": round(min(samples), 1),
            "max_ms": round(max(samples), 1)}


def single_core(phone: bytes, small: bytes, runs_big: int, runs_small: int) -> dict[str, object]:
    """Runs in a fresh worker process, so its peak RSS is that of a check worker alone."""
    chsi = load_profiles()["chsi"]
    out: dict[str, object] = {"engine_load_rss_mb": round(rss_mb(), 1)}
    default_engine()
    out["engine_loaded_rss_mb"] = round(rss_mb(), 1)
    report = analyse(phone, chsi, fix=True)
    assert report.fixed is not None and report.fixed.ok, "the benchmark photo must be fixable"
    out.update({"phone_bytes": len(phone), "small_bytes": len(small)})
    out["phone_check_fix"] = timed(lambda: analyse(phone, chsi, fix=True), runs_big)
    out["phone_check"] = timed(lambda: analyse(phone, chsi, fix=False), runs_big)
    out["small_check"] = timed(lambda: analyse(small, chsi, fix=False), runs_small)
    out["small_check_fix"] = timed(lambda: analyse(small, chsi, fix=True), runs_small)
    out["peak_rss_mb"] = round(rss_mb(), 1)
    return out


async def _lag_during(jobs: Callable[[], list[asyncio.Future[object]]]) -> dict[str, float]:
    """Wall time of the jobs and the worst event-loop delay seen by a 5 ms heartbeat meanwhile."""
    worst, start = 0.0, time.perf_counter()
    futures = jobs()
    done = asyncio.gather(*futures)
    while not done.done():
        tick = time.perf_counter()
        await asyncio.sleep(0.005)
        worst = max(worst, (time.perf_counter() - tick) * 1000 - 5)
    await done
    return {"wall_ms": round((time.perf_counter() - start) * 1000), "max_loop_lag_ms": round(worst, 1)}


def _worker_rss() -> float:
    return rss_mb()


def in_fresh_worker(phone: bytes, small: bytes, runs_big: int, runs_small: int) -> dict[str, object]:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as worker:
        return worker.submit(single_core, phone, small, runs_big, runs_small).result()


def executors(phone: bytes, photos: int) -> dict[str, object]:
    """to_thread vs a 2-process pool, 2 cores: throughput and how long the event loop is held."""
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    chsi = load_profiles()["chsi"]

    async def run() -> dict[str, object]:
        out: dict[str, object] = {}
        out["to_thread"] = await _lag_during(
            lambda: [asyncio.ensure_future(check_photo(phone, chsi, fix=True)) for _ in range(photos)])
        with process_pool(2) as pool:
            await asyncio.gather(*(check_photo(phone, chsi, fix=True, executor=pool) for _ in range(2)))
            out["process_pool_2"] = await _lag_during(
                lambda: [asyncio.ensure_future(check_photo(phone, chsi, fix=True, executor=pool))
                         for _ in range(photos)])
            loop = asyncio.get_running_loop()
            rss = [await loop.run_in_executor(pool, _worker_rss) for _ in range(2)]
            out["pool_worker_peak_rss_mb"] = round(max(rss), 1)
        return out

    return asyncio.run(run())


def machine() -> dict[str, object]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    return {"cpu": model, "nproc": os.cpu_count(), "pinned_cpu": CPU, "python": platform.python_version(),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3], "engine": "mediapipe-0.10.21",
            "note": "2 vCPU, shared with other agents' jobs: noisy; compare medians, not single runs"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    big, small_runs, pool_photos = (5, 10, 4) if args.quick else (60, 100, 16)
    started = time.perf_counter()
    result: dict[str, object] = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine()}
    phone, small = ph.phone_photo(), ph.jpeg(ph.studio(), quality=92)
    result["single_core"] = in_fresh_worker(phone, small, big, small_runs)
    result["executors_2_cores"] = executors(phone, pool_photos)
    result["targets"] = TARGETS
    result["seconds"] = round(time.perf_counter() - started)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        path = args.out or RESULTS / f"{dt.date.today().isoformat()}-photos.json"
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"written: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
