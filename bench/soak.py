"""Soak: 200 msg/s of mixed traffic for 30 minutes across 2 web processes and 1 job worker.

    python -m bench.soak                                  # 30 min at 200 msg/s, photos at 0.3/s
    python -m bench.soak --duration 120 --rate 50         # a short look

Everything runs as real processes on loopback: a private redis-server, ``gradbot wechat-stub``,
``gradbot serve --workers 2`` and ``gradbot worker``, on PostgreSQL (a fresh schema; ``--sqlite`` for
the embedded default). 2,000 simulated students each walk the demo photo procedure as people do:
follow, bind (name + ID), link the school, read the notice, enter the collection code, send a photo
(at ``--photo-rate`` per second overall; checks run for real), chat ("进度", "帮助", menu clicks,
views), then leave the procedure (取消), say 删除我的信息, answer what it asks (是 to put an open
procedure aside, 确认 to erase) and start again from nothing. A student never has two messages in
flight and reads the previous reply before sending (that is how it answers the erasure's questions;
the erasures that went through are counted).

Open loop: messages leave on schedule whatever happened before; latency counts from the scheduled
time. Reported: status counts, "busy" replies, deferred ("success") replies, p50/p99/max per minute
and overall (photos apart), RSS of every gradbot process sampled every 10 s (growth from minute 2 to
the end), Redis memory, error lines in the server logs. Written to bench/results/<date>-soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
GRADBOT = REPO / ".venv" / "bin" / "gradbot"
RESULTS = REPO / "bench" / "results"
TOKEN, APPID, SECRET = "soaktoken", "wx2c2769f8efd9abc2", "soak-secret"
BUSY = "系统繁忙".encode()
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CHATTER = ("进度", "帮助", "你好", "[click STATUS]", "[view]", "学位证什么时候发？", "1", "返回")
SETUP = ("[follow]", "演示采集", "同意", "1", "{name}", "{id}", "确认", "湖北", "十堰", "汉江师范学院", "1", "3",
         "2025届 毕业", "确认", "同意", "DEMO2025AB")
SILENT = ("[view]",)  # events that get no reply
# Replies the erasure steps look for (dialogs/templates/common/switch, erase/confirm, erase/erased).
ASKS_SWITCH = "回复「是」开始新的".encode()
ASKS_ERASE = "确定删除请回复「确认」".encode()
ERASED = "已删除你的信息".encode()
NAMES = ("张伟", "王芳", "李娜", "刘洋", "陈静", "欧阳娜娜", "司马相如", "阿依古丽·买买提")


# -- simulated students ----------------------------------------------------------------------------

@dataclass
class StudentSim:
    openid: str
    name: str
    id_number: str
    step: int = 0
    chatter_left: int = 0
    photo_sent: bool = False
    last_reply: bytes = b""  # what gradbot answered to the previous message (a student reads before replying)

    def next(self, photo_due: bool) -> str:
        """The next thing this student sends, and advance."""
        if self.step < len(SETUP):
            text = SETUP[self.step].format(name=self.name, id=self.id_number)
            self.step += 1
            if self.step == len(SETUP):
                self.chatter_left = random.randint(3, 10)
            return text
        if photo_due and not self.photo_sent:
            self.photo_sent = True
            return "[photo]"
        if self.chatter_left > 0:
            self.chatter_left -= 1
            return "确认" if self.photo_sent and self.chatter_left == 0 else random.choice(CHATTER)
        erasing = self.step - len(SETUP)
        if erasing == 0:  # leave the procedure (a step that cannot be cancelled says so), then erase
            self.step += 1
            return "取消"
        if erasing == 1:
            self.step += 1
            return "删除我的信息"
        if erasing == 2 and ASKS_SWITCH in self.last_reply:  # "put the open procedure aside?"
            return "是"
        if erasing == 2 and ASKS_ERASE in self.last_reply:
            self.step += 1
            return "确认"
        self.step, self.photo_sent = 1, False  # erased (or not: the last reply says): begin again, still following
        return self.next(photo_due)

    @property
    def at_photo_step(self) -> bool:
        return self.step == len(SETUP) and not self.photo_sent


def make_students(n: int) -> list[StudentSim]:
    from bot.services.identity import make_test_id

    out = []
    for i in range(n):
        born = (dt.date(1995, 1, 1) + dt.timedelta(days=i // 896)).strftime("%Y%m%d")  # 996-999: verifier faults
        out.append(StudentSim(f"oSoak_{i:05d}_{secrets.token_hex(4)}", NAMES[i % len(NAMES)],
                              make_test_id("420302", born, f"{i % 896 + 100:03d}")))
    return out


# -- requests ------------------------------------------------------------------------------------

def sha1(*parts: str) -> str:
    import hashlib

    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # WeChat's algorithm


class Wire:
    def __init__(self) -> None:
        self.msg_id = secrets.randbelow(10**12) * 10**6

    def request(self, openid: str, what: str, media_id: str) -> tuple[str, bytes, str]:
        now = str(int(time.time()))
        nonce = str(secrets.randbelow(10**10))
        query = f"signature={sha1(TOKEN, now, nonce)}&timestamp={now}&nonce={nonce}&openid={openid}"
        head = f"<xml><ToUserName><![CDATA[gh_soak]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>" \
               f"<CreateTime>{now}</CreateTime>"
        self.msg_id += 1
        if what == "[follow]":
            return query, (head + "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>"
                           ).encode(), "event"
        if what.startswith("[click"):
            return query, (head + "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event>"
                           "<EventKey><![CDATA[STATUS]]></EventKey></xml>").encode(), "event"
        if what == "[view]":
            return query, (head + "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[VIEW]]></Event>"
                           "<EventKey><![CDATA[https://example.edu.cn/]]></EventKey></xml>").encode(), "event"
        if what == "[photo]":
            return query, (head + f"<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[]]></PicUrl><MediaId>"
                           f"<![CDATA[{media_id}]]></MediaId><MsgId>{self.msg_id}</MsgId></xml>").encode(), "photo"
        return query, (head + f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{what}]]></Content>"
                       f"<MsgId>{self.msg_id}</MsgId></xml>").encode(), "text"


# -- processes -----------------------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    workdir: Path
    redis_port: int = field(default_factory=free_port)
    stub_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    schema: str = ""

    def env(self, database_url: str) -> dict[str, str]:
        from storage.sql.crypto import generate_key

        env = {k: v for k, v in os.environ.items() if not k.startswith("GRADBOT_")}
        env.update(GRADBOT_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0", GRADBOT_WECHAT_TOKEN=TOKEN,
                   GRADBOT_WECHAT_APPID=APPID, GRADBOT_WECHAT_SECRET=SECRET, GRADBOT_DATA_DIR=str(self.workdir),
                   GRADBOT_WECHAT_API_BASE=f"http://127.0.0.1:{self.stub_port}", GRADBOT_LOG_JSON="1",
                   GRADBOT_DATABASE_URL=database_url, GRADBOT_PUBLIC_URL=f"http://127.0.0.1:{self.web_port}")
        key_file = self.workdir / "soak.key"
        if not key_file.exists():
            key_file.write_text(generate_key())
        env["GRADBOT_DATA_KEY"] = key_file.read_text()
        return env

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                            start_new_session=True)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def errors(self) -> list[str]:
        found = []
        for name in ("serve", "worker"):
            for line in (self.workdir / f"{name}.log").read_text(errors="replace").splitlines():
                if '"level": "error"' in line or '"level": "critical"' in line or "Traceback" in line:
                    found.append(f"{name}: {line[:300]}")
        return found


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def cpu_s(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def gradbot_pids(stack: Stack) -> dict[str, int]:
    """Every gradbot process: web workers (spawned by serve), their photo-check pools, the job worker."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    pids = {"worker": stack.procs["worker"].pid}
    webs = [p for p in children.get(stack.procs["serve"].pid, []) if _spawned(p)]
    for n, web in enumerate(sorted(webs), 1):
        pids[f"web{n}"] = web
        for k, pool in enumerate(sorted(p for p in children.get(web, []) if _spawned(p)), 1):
            pids[f"web{n}.photos{k}"] = pool
    return pids


def _spawned(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


# -- the run -------------------------------------------------------------------------------------

@dataclass
class Results:
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"text": [], "event": [], "photo": []})
    per_minute: dict[int, list[float]] = field(default_factory=dict)
    by_input: dict[str, list[float]] = field(default_factory=dict)  # where the tail comes from
    rss: list[dict[str, Any]] = field(default_factory=list)
    cpu: list[dict[str, float]] = field(default_factory=list)
    backlog_skipped: int = 0
    erasures: int = 0  # students whose data 删除我的信息 really erased (then they set up again)


async def send(http: aiohttp.ClientSession, url: str, wire: Wire, student: StudentSim, what: str, media: str,
               due: float, started: float, res: Results, busy: set[str]) -> None:
    query, body, kind = wire.request(student.openid, what, media)
    try:
        async with http.post(f"{url}?{query}", data=body, headers={"Content-Type": "text/xml"}) as resp:
            text = await resp.read()
            status = str(resp.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        text, status = b"", type(exc).__name__
    latency = time.monotonic() - due
    student.last_reply = text
    res.statuses[status] += 1
    if ERASED in text:
        res.erasures += 1
    if BUSY in text:
        res.statuses["busy"] += 1
    if text == b"success":  # a view event has nothing to say; anything else was deferred past the budget
        res.statuses["success (silent event)" if what in SILENT else "success (deferred)"] += 1
    res.latencies[kind].append(latency)
    label = "{name}" if what == student.name else "{id}" if what == student.id_number else what
    res.by_input.setdefault(label if kind != "photo" else "[photo]", []).append(latency)
    if kind != "photo":
        res.per_minute.setdefault(int((due - started) // 60), []).append(latency)
    busy.discard(student.openid)


async def drive(url: str, students: list[StudentSim], media: list[str], rate: float, duration: float,
                photo_rate: float, res: Results, stub: str) -> None:
    wire, busy = Wire(), set()
    tasks: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=30)
    started = time.monotonic()
    next_photo = started + 5
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        for i in range(int(rate * duration)):
            due = started + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            photo_due = time.monotonic() >= next_photo
            student = _pick(students, busy, photo_due)
            if student is None:
                res.backlog_skipped += 1
                continue
            what = student.next(photo_due and student.at_photo_step)
            if what == "[photo]":
                next_photo += 1 / photo_rate
                await _interaction(http, stub, student.openid)
            busy.add(student.openid)
            task = asyncio.create_task(send(http, url, wire, student, what, random.choice(media), due, started,
                                            res, busy))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)


def _pick(students: list[StudentSim], busy: set[str], photo_due: bool) -> StudentSim | None:
    if photo_due:
        sample = random.sample(students, min(200, len(students)))
        ready = [s for s in sample if s.at_photo_step and s.openid not in busy]
        if ready:
            return ready[0]
    for _ in range(20):
        s = random.choice(students)
        if s.openid not in busy:
            return s
    return None


async def _interaction(http: aiohttp.ClientSession, stub: str, openid: str) -> None:
    """The student wrote: the stand-in opens their customer-service window (late replies go through it)."""
    async with http.post(f"{stub}/_stub/interaction", json={"openid": openid, "kind": "message"}) as resp:
        await resp.read()


async def sample_rss(stack: Stack, res: Results, started: float, stop: asyncio.Event) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis(port=stack.redis_port)
    pids = gradbot_pids(stack)
    while not stop.is_set():
        info = await client.info("memory")
        res.rss.append({"t": round(time.monotonic() - started), "redis_used_kb": int(info["used_memory"]) // 1024,
                        **{name: rss_kb(pid) for name, pid in pids.items()}})
        res.cpu.append({"t": round(time.monotonic() - started), **{name: cpu_s(pid) for name, pid in pids.items()}})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 10)
    await client.aclose()


def seed_media(stub: str) -> list[str]:
    sys.path.insert(0, str(REPO))
    from tests.fixtures.photos import jpeg, studio

    ids = []
    for size in ((480, 640), (720, 960), (960, 1280)):
        data = jpeg(studio(size, face=size[0] * 0.44, eye=size[1] * 0.44))
        req = urllib.request.Request(f"{stub}/_stub/media?type=image&filename=p.jpg", data=data,
                                     headers={"Content-Type": "image/jpeg"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            ids.append(json.loads(resp.read())["media_id"])
    return ids


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def summary(res: Results, args: argparse.Namespace, errors: list[str], elapsed: float) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float]:
        return {"n": len(values), "p50_ms": round(percentile(values, 0.5) * 1000, 1),
                "p99_ms": round(percentile(values, 0.99) * 1000, 1), "max_ms": round(max(values, default=0) * 1000, 1)}

    warm = next((r for r in res.rss if r["t"] >= 120), res.rss[0] if res.rss else {})
    last = res.rss[-1] if res.rss else {}
    growth = {k: round(100 * (last[k] - warm[k]) / warm[k], 1) for k in warm if k != "t" and warm.get(k)}
    sent = sum(len(v) for v in res.latencies.values())
    cpu = {k: round(res.cpu[-1][k] - res.cpu[0][k], 1) for k in res.cpu[0] if k != "t"} if len(res.cpu) > 1 else {}
    return {"cpu_s": cpu, "cpu_ms_per_message": round(1000 * sum(cpu.values()) / max(sent, 1), 2),
            "rate": args.rate, "duration_s": args.duration, "elapsed_s": round(elapsed), "photo_rate": args.photo_rate,
            "database": "sqlite" if args.sqlite else "postgresql", "statuses": dict(res.statuses),
            "skipped_all_students_busy": res.backlog_skipped, "erasures": res.erasures,
            "text": stats(res.latencies["text"]), "event": stats(res.latencies["event"]),
            "photo": stats(res.latencies["photo"]),
            "per_minute_p99_ms": {m: round(percentile(v, 0.99) * 1000, 1) for m, v in sorted(res.per_minute.items())},
            "rss_kb_at_2min": warm, "rss_kb_at_end": last, "rss_growth_pct": growth,
            "rss_kb_every_minute": [r for r in res.rss if r["t"] % 60 < 10],
            "by_input": {k: stats(v) for k, v in sorted(res.by_input.items(), key=lambda kv: -percentile(kv[1], 0.99))},
            "server_error_lines": errors[:30], "server_error_count": len(errors)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=1800.0)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--photo-rate", type=float, default=0.3, help="photos per second (each checked for real)")
    ap.add_argument("--students", type=int, default=2000)
    ap.add_argument("--sqlite", action="store_true", help="the embedded SQLite instead of PostgreSQL")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--tree", type=Path, help="run gradbot from this checkout (e.g. a `git worktree` of a commit)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    stack = Stack(Path(tempfile.mkdtemp(prefix="gradbot-soak-")))
    db_url = "" if args.sqlite else _pg_schema(stack)
    env = stack.env(db_url)
    if args.tree is not None:  # its packages first: the server runs the commit under test, not this tree
        env["PYTHONPATH"] = str(args.tree.resolve())
    res = Results()
    started = time.monotonic()
    try:
        stack.start("redis", ["redis-server", "--port", str(stack.redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(stack.workdir)], env)
        gradbot = [str(GRADBOT)] if args.tree is None else [sys.executable, "-m", "bot.cli"]
        stack.start("stub", [*gradbot, "wechat-stub", "--port", str(stack.stub_port), "--appid", APPID,
                             "--secret", SECRET], env)
        wait_http(f"http://127.0.0.1:{stack.stub_port}/_stub/calls")
        subprocess.run([*gradbot, "db", "upgrade"], env=env, check=True, cwd=stack.workdir, capture_output=True)
        stack.start("serve", [*gradbot, "serve", "--port", str(stack.web_port), "--workers", "2"], env)
        stack.start("worker", [*gradbot, "worker"], env)
        wait_http(f"http://127.0.0.1:{stack.web_port}/readyz")
        stub = f"http://127.0.0.1:{stack.stub_port}"
        media = seed_media(stub)
        print(f"soak: {args.rate} msg/s for {args.duration:.0f} s, photos {args.photo_rate}/s, logs in {stack.workdir}",
              flush=True)
        started = time.monotonic()
        asyncio.run(_run(stack, args, media, stub, res, started))
        time.sleep(10)  # late replies and queued sends drain
        errors = stack.errors()
    finally:
        stack.stop()
        if stack.schema:
            _drop_schema(stack.schema)
    out = summary(res, args, errors, time.monotonic() - started)
    path = args.out or RESULTS / f"{dt.date.today().isoformat()}-soak.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=2))
    print(json.dumps(out, ensure_ascii=False, indent=2))
    shutil.rmtree(stack.workdir, ignore_errors=True)
    return 0


async def _run(stack: Stack, args: argparse.Namespace, media: list[str], stub: str, res: Results,
               started: float) -> None:
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(stack, res, started, stop))
    await drive(f"http://127.0.0.1:{stack.web_port}/wechat", make_students(args.students), media, args.rate,
                args.duration, args.photo_rate, res, stub)
    stop.set()
    await sampler


def _pg_schema(stack: Stack) -> str:
    stack.schema = f"soak_{secrets.token_hex(4)}"
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc", f"CREATE SCHEMA {stack.schema}"],
                   check=True)
    return f"{PG}?search_path={stack.schema}"


def _drop_schema(schema: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc", f"DROP SCHEMA {schema} CASCADE"],
                   check=False)


if __name__ == "__main__":
    sys.exit(main())
