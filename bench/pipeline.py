"""Message-pipeline benchmark: gradbot serve against WeRoBot, closed loop (wrk) and open loop (500 msg/s).

Every measurement starts a fresh server, checks it answers correctly, warms it up, then measures. Rounds
rotate the order of the variants, so each round compares neighbours in time on this shared machine.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from bench import loadwrk, machine, servers, verify, wxreq
from bench.servers import Running, Variant

TOKEN = "benchtoken"
APPID = "wxbench0000000001"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

CLOSED = (
    Variant("werobot-sessions", "werobot", 2, sessions=True),
    Variant("werobot-nosessions", "werobot", 2, sessions=False),
    Variant("gradbot-1p", "gradbot", 1),
    Variant("gradbot-2p", "gradbot", 2),
    Variant("gradbot-1p-safe", "gradbot", 1, safe=True),
    Variant("gradbot-2p-safe", "gradbot", 2, safe=True),
)
RAW = Variant("raw-floor", "raw", 1)
OPEN = ("raw-floor", "gradbot-2p", "gradbot-1p", "werobot-nosessions")


@dataclass
class Config:
    rounds: int = 5
    duration: float = 8.0
    connections: int = 32
    warmup: float = 2.0
    open_rounds: int = 3
    open_duration: float = 10.0
    rate: float = 500.0
    open_conns: int = 64
    closed_variants: tuple[str, ...] = tuple(v.name for v in CLOSED)
    open_variants: tuple[str, ...] = OPEN


def account(v: Variant) -> wxreq.Account:
    return wxreq.Account(TOKEN, APPID, AES_KEY if v.safe else "")


class Bench:
    def __init__(self, cfg: Config, workdir: Path, logdir: Path) -> None:
        self.cfg, self.workdir, self.logdir = cfg, workdir, logdir
        self.prefix = "bench" + secrets.token_hex(3)
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.redis_pid = int(self.redis.info("server")["process_id"])
        self.env = {
            "BENCH_WECHAT_TOKEN": TOKEN, "GRADBOT_WECHAT_TOKEN": TOKEN, "GRADBOT_WECHAT_APPID": APPID,
            "GRADBOT_WECHAT_AES_KEY": AES_KEY, "GRADBOT_REDIS_URL": REDIS_URL,
            "GRADBOT_REDIS_PREFIX": self.prefix,
            # Outbound calls (if any) go to a closed loopback port, never off this machine.
            "GRADBOT_WECHAT_API_BASE": f"http://127.0.0.1:{servers.free_port()}",
        }
        self.runs: list[dict[str, Any]] = []
        self.broken: dict[str, str] = {}
        self.verified: dict[str, Any] = {}
        self.capacity: dict[str, float] = {}  # warm-up req/s, sizes the safe-mode pools
        self.key_census: dict[str, int] = {}

    # -- one server's life -------------------------------------------------------------------
    def session(self, v: Variant) -> Running | None:
        if v.name in self.broken:
            return None
        try:
            run = servers.start(v, self.env, self.logdir)
        except Exception as exc:
            self.broken[v.name] = f"did not start: {exc}"
            print(f"  {v.name}: {self.broken[v.name]}", flush=True)
            return None
        try:
            if v.kind != "raw":
                offset = run.log_size()
                self.verified[v.name] = verify.check(run.url, account(v))
                errors = run.log_errors(offset)
                if errors:
                    raise verify.VerifyError(f"the server logged {len(errors)} error lines: {errors[0][:300]}")
            self.warm(run)
        except Exception as exc:
            self.broken[v.name] = f"failed the correctness check: {exc}"
            print(f"  {v.name}: {self.broken[v.name]}\n{run.log_tail()}", flush=True)
            servers.stop(run)
            return None
        return run

    def warm(self, run: Running) -> None:
        script = self.script(run.variant, self.cfg.warmup, warm=True)
        res = loadwrk.run(run.url, script, self.cfg.warmup, self.cfg.connections)
        self.capacity[run.variant.name] = max(self.capacity.get(run.variant.name, 0.0), res["rps"])

    def script(self, v: Variant, duration: float, warm: bool = False) -> Path:
        path = self.workdir / f"{v.name}.lua"
        if not v.safe:
            path.write_text(wxreq.plain_lua(account(v)), encoding="utf-8")
            return path
        guess = self.capacity.get(v.name, 2000.0 if warm else 0.0)
        size = int(min(200_000, max(4000, 3 * guess * duration)))
        pool = wxreq.write_pool(self.workdir / f"{v.name}.tsv", account(v), size)
        path.write_text(wxreq.pool_lua(pool), encoding="utf-8")
        return path

    # -- measurements ---------------------------------------------------------------------------
    def closed(self, v: Variant, rnd: int) -> None:
        run = self.session(v)
        if run is None:
            return
        try:
            script = self.script(v, self.cfg.duration)
            probe = Probe(run, self.redis_pid)
            res = loadwrk.run(run.url, script, self.cfg.duration, self.cfg.connections)
            rec = probe.finish(res["requests"])
        finally:
            servers.stop(run)
        res["log_errors"] = rec["server_log_errors"]
        rec.update(phase="closed", variant=v.name, round=rnd, rps=round(res["rps"], 1),
                   requests=res["requests"], duration_s=res["duration_us"] / 1e6,
                   lat_ms={k: round(val / 1000, 2) for k, val in res["lat_us"].items()},
                   errors=res["errors"], non2xx=res["non2xx"], wrapped=bool(res["wrapped"]),
                   client_cpu_us_per_req=_per(res["client_cpu_us"], res["requests"]))
        rec["valid"], rec["invalid_reason"] = _validity(res)
        self.record(rec)

    def open(self, v: Variant, rnd: int) -> None:
        run = self.session(v)
        if run is None:
            return
        try:
            count = int(self.cfg.rate * self.cfg.open_duration)
            pool = wxreq.write_pool(self.workdir / f"{v.name}-open.tsv", account(v), count)
            probe = Probe(run, self.redis_pid)
            res = self.open_client(run.url, pool)
            rec = probe.finish(res["ok"] or res["sent"])
            if res.get("aborted_at") is not None:
                rec["server_cpu_us_per_req"] = rec["redis_cpu_us_per_req"] = None  # cut-off work: no per-msg figure
        finally:
            servers.stop(run)
        errors = res["non2xx"] + rec["server_log_errors"]
        rec.update(phase="open", variant=v.name, round=rnd, offered_rate=res["offered_rate"],
                   achieved_rate=res["achieved_rate"], requests=res["sent"], lat_ms=res["lat_ms"],
                   statuses=res["statuses"], non2xx=errors, connects=res["connects"],
                   aborted_at=res.get("aborted_at"),
                   sustained=res.get("aborted_at") is None and res["achieved_rate"] >= 0.97 * res["offered_rate"],
                   client_cpu_us_per_req=res["client_cpu_us_per_req"],
                   valid=errors == 0,
                   invalid_reason="" if errors == 0 else f"{res['non2xx']} non-2xx or failed, "
                                                         f"{rec['server_log_errors']} server error lines")
        self.record(rec)

    def open_client(self, url: str, pool: Path) -> dict[str, Any]:
        cmd = [sys.executable, str(servers.BENCH / "openloop.py"), url, str(pool),
               "--rate", str(self.cfg.rate), "--duration", str(self.cfg.open_duration),
               "--max-conns", str(self.cfg.open_conns)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              timeout=self.cfg.open_duration + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"open-loop client failed: {proc.stderr.strip()[-500:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result

    def record(self, rec: dict[str, Any]) -> None:
        self.runs.append(rec)
        self.census()
        print("  " + _line(rec), flush=True)

    # -- Redis housekeeping --------------------------------------------------------------------
    def census(self) -> None:
        """Count this run's keys by kind: proof that dedup, lock and session really touched Redis."""
        for key in self.redis.scan_iter(match=f"{self.prefix}:*", count=1000):
            kind = _key_kind(key.decode(errors="replace"))
            self.key_census[kind] = self.key_census.get(kind, 0) + 1
        self.cleanup()

    def cleanup(self) -> int:
        deleted = 0
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=f"{self.prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(self.redis.delete(*batch))
                batch.clear()
        if batch:
            deleted += int(self.redis.delete(*batch))
        return deleted


class Probe:
    """CPU of the server's process tree, of redis-server and of the whole host over one measurement."""

    def __init__(self, run: Running, redis_pid: int) -> None:
        self.run, self.redis_pid = run, redis_pid
        self.pids = run.tree()
        self.load1 = machine.loadavg()[0]
        self.t0 = time.monotonic()
        self.srv0 = servers.cpu_us(self.pids)
        self.red0 = servers.cpu_us([redis_pid])
        self.host0 = machine.host_cpu_ticks()
        self.log0 = run.log_size()

    def finish(self, requests: int) -> dict[str, Any]:
        elapsed = time.monotonic() - self.t0
        srv = servers.cpu_us(self.pids) - self.srv0
        red = servers.cpu_us([self.redis_pid]) - self.red0
        busy, steal, total = (a - b for a, b in zip(machine.host_cpu_ticks(), self.host0, strict=True))
        ncpu = os.cpu_count() or 1
        return {
            "server_cpu_us_per_req": _per(srv, requests), "redis_cpu_us_per_req": _per(red, requests),
            "server_cores": round(srv / 1e6 / elapsed, 2),
            "host_busy_cores": round(busy / total * ncpu, 2) if total else None,
            "host_steal_cores": round(steal / total * ncpu, 2) if total else None,
            "load1_before": self.load1, "server_procs": len(self.pids), "rss_mib": servers.rss_mib(self.pids),
            "server_log_errors": len(self.run.log_errors(self.log0)),
        }


def _per(us: float, n: int) -> float | None:
    return round(us / n, 1) if n else None


def _validity(res: dict[str, Any]) -> tuple[bool, str]:
    reasons = []
    if res["error_total"]:
        reasons.append("errors " + ", ".join(f"{k}={v}" for k, v in res["errors"].items() if v))
    if res["log_errors"]:
        reasons.append(f"the server logged {res['log_errors']} error lines")
    if res["wrapped"]:
        reasons.append("request pool wrapped (MsgIds repeated)")
    if not res["requests"]:
        reasons.append("no requests completed")
    return not reasons, "; ".join(reasons)


def _key_kind(key: str) -> str:
    tail = key.rsplit("}", 1)[-1] if "}" in key else ":" + key.split(":", 2)[-1]
    parts = [p for p in tail.split(":") if p]
    return parts[0] if parts else "other"


def _line(rec: dict[str, Any]) -> str:
    lat = rec.get("lat_ms", {})
    rate = rec.get("rps") if rec["phase"] == "closed" else rec.get("achieved_rate")
    flag = "" if rec["valid"] else f"  INVALID: {rec['invalid_reason']}"
    return (f"r{rec['round']} {rec['phase']:6} {rec['variant']:20} {rate:>8} msg/s  p50 {lat.get('p50')} "
            f"p99 {lat.get('p99')} ms  cpu {rec['server_cpu_us_per_req']} us/req "
            f"(+redis {rec['redis_cpu_us_per_req']})  load {rec['load1_before']}{flag}")


def rotated(items: list[Variant], rnd: int) -> list[Variant]:
    k = rnd % len(items) if items else 0
    return items[k:] + items[:k]


def execute(cfg: Config, out: Path) -> dict[str, Any]:
    loadwrk.require_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="gradbot-bench-"))
    logdir = out.parent / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    servers.ensure_werobot_venv(logdir / "werobot-venv.log")
    meta = machine.describe()
    bench = Bench(cfg, workdir, logdir)
    closed, open_ = _select(cfg, bench)
    print(f"prefix {bench.prefix}; closed loop: {[v.name for v in closed]}; "
          f"open loop: {[v.name for v in open_]}", flush=True)
    try:
        _matrix(bench, closed, open_)
    finally:
        bench.cleanup()
    meta["loadavg_end"] = machine.loadavg()
    return {"meta": meta, "config": asdict(cfg), "redis_prefix": bench.prefix, "broken": bench.broken,
            "verified": bench.verified, "redis_key_census": bench.key_census, "runs": bench.runs}


def _select(cfg: Config, bench: Bench) -> tuple[list[Variant], list[Variant]]:
    ok, why = servers.gradbot_available()
    if not ok:
        print(f"gradbot serve is not available ({why}): measuring the references only", flush=True)
    by_name = {v.name: v for v in (*CLOSED, RAW)}
    for name in (*cfg.closed_variants, *cfg.open_variants):
        if name not in by_name:
            raise SystemExit(f"unknown variant {name!r}; known: {', '.join(by_name)}")
        if by_name[name].kind == "gradbot" and not ok:
            bench.broken[name] = f"gradbot serve not available: {why}"
    pick = [by_name[n] for n in cfg.closed_variants if n not in bench.broken]
    return pick, [by_name[n] for n in cfg.open_variants if n not in bench.broken]


def _matrix(bench: Bench, closed: list[Variant], open_: list[Variant]) -> None:
    for rnd in range(bench.cfg.rounds):
        print(f"closed loop, round {rnd + 1}/{bench.cfg.rounds}", flush=True)
        for v in rotated(closed, rnd):
            bench.closed(v, rnd)
    for rnd in range(bench.cfg.open_rounds):
        print(f"open loop at {bench.cfg.rate:g} msg/s, round {rnd + 1}/{bench.cfg.open_rounds}", flush=True)
        for v in rotated(open_, rnd):
            bench.open(v, rnd)
