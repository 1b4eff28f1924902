"""``python -m bench.broadcast``: broadcasts against the WeChat stand-in, with a worker killed mid-way.

    python -m bench.broadcast                          # sweep 200/500/1000/1500 msg/s, then 100k at 1000/s + kill
    python -m bench.broadcast --students 20000 --sweep ''   # a shorter crash run only

Everything is real and local: PostgreSQL (a fresh schema in database ``test``), Redis, the stand-in
(``bot.sandbox.wechat_stub`` in its own process, every student following), ``gradbot worker``
processes, ``gradbot broadcast send`` to queue it, and the ticker a web process runs. The stand-in
records every delivered template message; duplicates and misses are counted from its inbox, rates
from its delivery timestamps. Figures and method: docs/benchmarks.md "Broadcasts".
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import signal
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import redis.asyncio as aioredis
import sqlalchemy as sa
import uvloop

from bench.machine import describe, loadavg
from bot.config import Settings
from bot.jobs import build_broker
from bot.services.notify.templates import load_templates
from bot.services.notify.ticker import Ticker
from storage.keys import KeyBuilder
from storage.sql import broadcasts, schools
from storage.sql.crypto import generate_key
from storage.sql.db import Database
from storage.sql.migrate import ensure_schema
from storage.sql.schools import School
from storage.sql.tables import school_links, students

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PG = os.environ.get("GRADBOT_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("GRADBOT_REDIS_URL", "redis://127.0.0.1:6379/0")
APPID, SECRET = "wx2c2769f8efd9abc2", "bench-secret"
SCHOOL = School("4142010518", "汉江师范学院", "湖北省", "十堰市", "湖北省", "本科")
SWEEP_COHORT, MAIN_COHORT = 2024, 2025


WORKER = ("import sys; from bot.cli import main; sys.exit(main(['worker', '--concurrency', '16']))")


def openid(n: int) -> str:
    return f"oBench{n:07d}_aBcDeFgHiJkLmN"


@dataclass
class Run:
    label: str
    rate: int
    recipients: int
    killed: bool
    broadcast_id: int = 0
    state: str = ""
    delivered: int = 0
    distinct: int = 0
    duplicates: int = 0
    missed: int = 0
    sends: int = 0  # template/send calls the stand-in answered (re-sends included)
    seconds: float = 0.0  # first to last delivery
    overall_rate: float = 0.0
    steady_rate: float = 0.0  # deliveries between the 5th and the 95th percentile of time
    longest_gap_s: float = 0.0
    start_latency_s: float = 0.0  # queued -> first delivery (audience written, senders started)
    kill_at_sent: int = 0
    cpu_ms_per_message: dict[str, float] = field(default_factory=dict)  # workers, stand-in
    load_during: list[float] = field(default_factory=list)


# --- the stand-in, in its own process --------------------------------------------------------------

def serve_stub(port: int, followers: int) -> None:
    """Child process: the WeChat stand-in plus a summary route for the benchmark (not part of gradbot)."""
    from aiohttp import web

    from bot.sandbox.stub_control import STATE
    from bot.sandbox.stub_state import StubConfig
    from bot.sandbox.wechat_stub import create_stub_app

    config = StubConfig(appid=APPID, secret=SECRET, templates=load_templates().stub_templates(),
                        daily_template_quota=10_000_000)
    app = create_stub_app(config)
    state = app[STATE]
    for n in range(followers):
        state.interaction(openid(n), "subscribe")

    async def summary(request: web.Request) -> web.Response:
        tag = request.query["tag"]
        counts: dict[str, int] = {}
        stamps: list[float] = []
        for who, entries in state.inbox.items():
            for entry in entries:
                if entry["type"] == "template" and entry["payload"]["data"]["thing3"]["value"] == tag:
                    counts[who] = counts.get(who, 0) + 1
                    stamps.append(entry["timestamp"])
        return web.json_response({"counts": counts, "stamps": sorted(stamps),
                                  "sends": state.calls["message/template/send"]})

    app.router.add_get("/_bench/summary", summary)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, loop=uvloop.new_event_loop())


# --- the driver -----------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.schema = f"bench_bc_{uuid.uuid4().hex[:8]}"
        self.prefix = f"bbc{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        self.stub_url = f"http://127.0.0.1:{self.port}"
        self.url = f"{PG}?search_path={self.schema}"
        self.data_key = generate_key()
        self.workers: list[asyncio.subprocess.Process] = []
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("GRADBOT_")},
                    "GRADBOT_REDIS_URL": REDIS, "GRADBOT_REDIS_PREFIX": self.prefix, "GRADBOT_WECHAT_APPID": APPID,
                    "GRADBOT_WECHAT_SECRET": SECRET, "GRADBOT_WECHAT_API_BASE": self.stub_url,
                    "GRADBOT_DATABASE_URL": self.url, "GRADBOT_DATA_KEY": self.data_key,
                    "GRADBOT_BROADCAST_SENDERS": str(args.senders), "GRADBOT_BROADCAST_LEASE_S": str(args.lease),
                    "GRADBOT_BROADCAST_DAILY_LIMIT": "10000000", "PYTHONUNBUFFERED": "1"}

    async def setup(self) -> None:
        conn = await asyncpg.connect(PG.replace("postgresql+asyncpg://", "postgresql://"))
        await conn.execute(f"CREATE SCHEMA {self.schema}")
        await conn.close()
        self.db = Database(self.url)
        await ensure_schema(self.db)
        total = self.args.students + self.args.sweep_students
        await self.seed(total)
        self.stub = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.broadcast", "stub", "--port", str(self.port), "--followers", str(total),
            cwd=REPO, env=self.env)
        self.http = aiohttp.ClientSession()
        await self.wait_stub()
        self.redis = aioredis.Redis.from_url(REDIS)
        keys = KeyBuilder(self.prefix, APPID)
        self.ticker = asyncio.create_task(Ticker(self.db, self.redis, keys, build_broker(
            _settings(self.env), client=self.redis), self.args.senders, every=1.0).run())
        for _ in range(self.args.workers):
            await self.start_worker()

    async def seed(self, total: int) -> None:
        """``total`` students following and linked to one school: the sweep's cohort first, then the main one."""
        now = dt.datetime.now(dt.UTC)
        async with self.db.begin() as conn:
            await schools.upsert_many(conn, [SCHOOL])
            for start in range(0, total, 10_000):
                ids = range(start, min(total, start + 10_000))
                await conn.execute(sa.insert(students), [
                    {"openid": openid(n), "following": True, "followed_at": now, "created_at": now, "updated_at": now}
                    for n in ids])
                await conn.execute(sa.insert(school_links), [
                    {"openid": openid(n), "school_code": SCHOOL.code, "school_name": SCHOOL.name,
                     "education_type": "成人教育", "level": "专升本", "updated_at": now,
                     "cohort": SWEEP_COHORT if n < self.args.sweep_students else MAIN_COHORT} for n in ids])

    async def wait_stub(self) -> None:
        for _ in range(600):
            try:
                async with self.http.get(f"{self.stub_url}/_stub/calls") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("the stand-in did not start")

    async def start_worker(self) -> None:
        """``gradbot worker`` (it runs on uvloop, like ``gradbot serve``)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, cwd=REPO, env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        self.workers.append(proc)

    async def send(self, rate: int, cohort: int, tag: str) -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "broadcast", "send", "--template", "deadline_reminder",
            "--audience", f"school={SCHOOL.code},cohort={cohort},stage=not_bound", "--var", f"message={tag}",
            "--rate", str(rate), "--no-wait", "--title", tag, cwd=REPO, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"broadcast send failed: {err.decode()}")
        return int(out.decode().split()[-1])

    async def one(self, label: str, rate: int, cohort: int, recipients: int, kill_at: float) -> Run:
        run = Run(label, rate, recipients, kill_at > 0)
        queued = time.time()
        cpu = {"workers": -self.cpu(self.workers), "stand-in": -self.cpu([self.stub])}
        run.broadcast_id = await self.send(rate, cohort, label)
        print(f"{label}: broadcast {run.broadcast_id}, {recipients} recipients at {rate}/s", flush=True)
        while True:
            async with self.db.read() as conn:
                p = await broadcasts.progress(conn, run.broadcast_id)
            assert p is not None
            if kill_at and not run.kill_at_sent and p.total and p.sent >= kill_at * p.total:
                run.kill_at_sent = p.sent
                victim = self.workers.pop(0)
                cpu["workers"] += self.cpu([victim])
                victim.send_signal(signal.SIGKILL)  # no goodbye: claimed rows and its jobs are left behind
                await victim.wait()
                print(f"  killed worker {victim.pid} at {p.sent} sent; starting another", flush=True)
                await asyncio.sleep(1.0)
                await self.start_worker()
            if p.state in ("done", "cancelled", "paused"):
                run.state = p.state
                break
            await asyncio.sleep(1.0)
        await asyncio.sleep(1.0)  # the last deliveries reach the inbox
        cpu["workers"] += self.cpu(self.workers)
        cpu["stand-in"] += self.cpu([self.stub])
        run.load_during = loadavg()
        await self.measure(run, queued)
        if run.delivered:
            run.cpu_ms_per_message = {k: round(1000 * v / run.delivered, 3) for k, v in cpu.items()}
        print("  " + json.dumps({k: v for k, v in asdict(run).items() if k != "notes"}), flush=True)
        return run

    async def measure(self, run: Run, queued: float) -> None:
        async with self.http.get(f"{self.stub_url}/_bench/summary", params={"tag": run.label}) as resp:
            body = await resp.json()
        counts: dict[str, int] = body["counts"]
        stamps: list[float] = body["stamps"]
        async with self.db.read() as conn:
            expected = {r["openid"] for r in await broadcasts.recipients(conn, run.broadcast_id, limit=10**7)}
        run.delivered, run.distinct = len(stamps), len(counts)
        run.duplicates = sum(c - 1 for c in counts.values() if c > 1)
        run.missed = len(expected - set(counts))
        run.sends = int(body["sends"]) - getattr(self, "_sends_before", 0)
        self._sends_before = int(body["sends"])
        if len(stamps) >= 2:
            run.seconds = stamps[-1] - stamps[0]
            run.overall_rate = (len(stamps) - 1) / run.seconds
            lo, hi = stamps[len(stamps) // 20], stamps[len(stamps) * 19 // 20]
            run.steady_rate = (len(stamps) * 0.9) / (hi - lo) if hi > lo else 0.0
            run.longest_gap_s = max(b - a for a, b in itertools.pairwise(stamps))
            run.start_latency_s = stamps[0] - queued

    @staticmethod
    def cpu(procs: list[asyncio.subprocess.Process]) -> float:
        """CPU seconds (user + system) the processes have used so far."""
        total = 0.0
        for proc in procs:
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    async def close(self) -> None:
        self.ticker.cancel()
        for proc in [*self.workers, self.stub]:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, self.stub]:
            try:
                await asyncio.wait_for(proc.wait(), 40)
            except TimeoutError:
                proc.kill()
        await self.http.close()
        keys = [k async for k in self.redis.scan_iter(match=f"{self.prefix}:*", count=1000)]
        if keys:
            await self.redis.delete(*keys)
        await self.redis.aclose()
        await self.db.dispose()
        if not self.args.keep:
            conn = await asyncpg.connect(PG.replace("postgresql+asyncpg://", "postgresql://"))
            await conn.execute(f"DROP SCHEMA {self.schema} CASCADE")
            await conn.close()


def _settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    b = Bench(args)
    runs: list[Run] = []
    load_before = loadavg()
    try:
        await b.setup()
        rates = [int(r) for r in args.sweep.split(",") if r.strip()]
        for n, rate in enumerate(rates, 1):
            runs.append(await b.one(f"sweep{n}-{rate}", rate, SWEEP_COHORT, args.sweep_students, 0.0))
        runs.append(await b.one(f"crash-{args.rate}", args.rate, MAIN_COHORT, args.students, args.kill_at))
    finally:
        await b.close()
    return {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": describe(),
            "load_before": load_before, "load_after": loadavg(),
            "config": {"students": args.students, "sweep_students": args.sweep_students, "workers": args.workers,
                       "senders": args.senders, "lease_s": args.lease, "kill_at": args.kill_at},
            "runs": [asdict(r) for r in runs]}


def table(result: dict[str, Any]) -> str:
    lines = ["| run | rate | recipients | delivered | duplicates | missed | sends | steady /s | overall /s | "
             "steady vs rate | longest gap s | CPU ms/msg workers + stand-in | load 1 min |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        cpu = r["cpu_ms_per_message"]
        lines.append(f"| {r['label']} | {r['rate']} | {r['recipients']} | {r['delivered']} | {r['duplicates']} | "
                     f"{r['missed']} | {r['sends']} | {r['steady_rate']:.0f} | {r['overall_rate']:.0f} | "
                     f"{(r['steady_rate'] / r['rate'] - 1):+.1%} | {r['longest_gap_s']:.1f} | "
                     f"{cpu.get('workers', 0):.2f} + {cpu.get('stand-in', 0):.2f} | "
                     f"{(r['load_during'] or [0])[0]:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.broadcast")
    sub = parser.add_subparsers(dest="cmd")
    stub = sub.add_parser("stub")
    stub.add_argument("--port", type=int, required=True)
    stub.add_argument("--followers", type=int, required=True)
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--kill-at", type=float, default=0.4, help="kill a worker once this share was sent")
    parser.add_argument("--sweep", default="200,500,1000,1500", help="rates for runs without a kill")
    parser.add_argument("--sweep-students", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema afterwards")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    if args.cmd == "stub":
        serve_stub(args.port, args.followers)
        return 0
    result = asyncio.run(bench(args))
    RESULTS.mkdir(exist_ok=True)
    out = Path(args.out) if args.out else RESULTS / f"{dt.date.today().isoformat()}-broadcast.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(table(result))
    print(f"results: {out}")
    bad = [r for r in result["runs"] if r["duplicates"] or r["missed"] or r["state"] != "done"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
