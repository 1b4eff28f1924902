"""Dialog-engine benchmark (issue 3): time per step, no growth of the machines' models, FIFO per student.

    python -m bench engine                     # 10,000 steps in-process, then 2 x 100 bursts on 2 workers
    python -m bench engine --steps 2000 --bursts 20      # a shorter run
    python -m bench engine --no-fifo           # the in-process part only

**Steps.** The full stack of a web worker runs in this process (Redis session store with the ticket
lock, SQL on SQLite, the real handlers, engine and templates), with no HTTP, no XML and no outside API.
Students walk the binding dialog: start, consent, ID type, a refused name, a name, back, another name,
a refused ID number, back, cancel (``WALK``). A step is ``Pipeline.process``: begin (dedup + lock +
record read) → dispatch → render → commit. After every step the saved record must show the expected
state. ``Engine.models()`` is read before and after.

**FIFO.** ``gradbot serve --workers 2``, one student, over HTTP with a new connection per message
(SO_REUSEPORT spreads them over both workers). A sequential pass of ``WALK`` gives the reference
replies. *Ordered bursts* send the 10 messages without waiting for replies; the next message leaves as
soon as Redis shows the previous one holds its ticket, so arrival order is known and the replies must
equal the reference, in order. *Concurrent bursts* put the student at the name question and send
10 refused names at once; the dialog's retry count must grow by exactly 10. In both, the record's
version ``v`` must grow by exactly the number of messages: a lost update would show as less.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bench import pipeline, servers, wxreq

WALK: tuple[tuple[str, str | None], ...] = (
    ("实名认证", "consent"), ("同意", "choose_type"), ("1", "ask_name"), ("123", "ask_name"),
    ("张三", "ask_id"), ("返回", "ask_name"), ("李四", "ask_id"), ("123", "ask_id"), ("返回", "ask_name"),
    ("取消", None),
)
TO_USER = wxreq.TO_USER
_CONTENT = re.compile(r"<Content><!\[CDATA\[(.*?)\]\]></Content>", re.S)


def _pct(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _ms(xs: Sequence[float]) -> dict[str, float]:
    return {"p50": round(_pct(xs, 0.5) * 1e3, 3), "p99": round(_pct(xs, 0.99) * 1e3, 3),
            "max": round(max(xs) * 1e3, 3), "mean": round(statistics.fmean(xs) * 1e3, 3)}


def _state(raw: bytes | None) -> tuple[int, str | None, dict[str, int]]:
    body = json.loads(raw) if raw else {}
    stack = body.get("stack") or [{}]
    return int(body.get("v", 0)), stack[-1].get("state"), stack[-1].get("retries", {})


class GcWatch:
    """Collections and their pauses while active (gc.callbacks)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.by_gen = [0, 0, 0]
        self._t = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._t)
            self.by_gen[info["generation"]] += 1

    def summary(self) -> dict[str, Any]:
        return {"collections_by_generation": self.by_gen, "total_ms": round(sum(self.pauses) * 1e3, 1),
                "max_ms": round(max(self.pauses, default=0.0) * 1e3, 2)}


# -- part 1: steps in-process -------------------------------------------------------------------------
async def steps(total: int, students: int) -> dict[str, Any]:
    import handlers
    from bot.app import redis_client, session_store
    from bot.config import Settings
    from bot.metrics import Metrics
    from bot.pipeline import Pipeline
    from bot.render import Renderer
    from bot.services.container import open_services
    from bot.wechat.inbound import Inbound

    prefix = "benchengine" + str(int(time.time()) % 100000)
    settings = Settings(redis_url=pipeline.REDIS_URL, redis_prefix=prefix, data_dir=Path(tempfile.mkdtemp()),
                        wechat_api_base=f"http://127.0.0.1:{servers.free_port()}")
    client = redis_client(settings)
    ids = wxreq.openids(students)
    msg_ids = itertools.count(10**16)
    renderer, dispatch_s = Renderer(), []

    async def timed_dispatch(inbound: Any, ctx: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await handlers.dispatch(inbound, ctx)
        finally:
            dispatch_s.append(time.perf_counter() - t0)

    async def walk(pipe: Pipeline, openid: str, times: list[list[float]] | None) -> None:
        for i, (text, expected) in enumerate(WALK):
            inbound = Inbound(openid, TO_USER, "text", int(time.time()), msg_id=next(msg_ids), content=text)
            t0 = time.perf_counter()
            result = await pipe.process(inbound, 4.5)
            if times is not None:
                times[i].append(time.perf_counter() - t0)
            state = _state(await store.peek(openid))[1]  # the record is sealed in Redis
            if not result.messages or state != expected:
                raise RuntimeError(f"{text!r}: state {state!r}, expected {expected!r}: {result.messages}")

    store = session_store(settings, client)
    try:
        async with open_services(settings, client, renderer) as services:
            pipe = Pipeline(store, timed_dispatch, renderer, Metrics(), services=services)
            for openid in ids:  # warm-up: every student once, not timed
                await walk(pipe, openid, None)
            models_before = services.engine.models()
            dispatch_s.clear()
            times: list[list[float]] = [[] for _ in WALK]
            watch = GcWatch()
            gc.callbacks.append(watch)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            try:
                for n in range(max(1, total // len(WALK))):
                    await walk(pipe, ids[n % len(ids)], times)
            finally:
                gc.callbacks.remove(watch)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            models_after = services.engine.models()
    finally:
        await _drop(client, prefix)
        await store.close()
    every = [t for ts in times for t in ts]
    return {"steps": len(every), "students": students, "step_ms": _ms(every), "dispatch_ms": _ms(dispatch_s),
            "by_input": {f"{i + 1} {text}": _ms(ts) for i, ((text, _), ts) in enumerate(zip(WALK, times, strict=True))},
            "cpu_us_per_step": round(cpu / len(every) * 1e6, 1),
            "wall_us_per_step": round(wall / len(every) * 1e6, 1), "gc": watch.summary(),
            "models_before": models_before, "models_after": models_after,
            "dialogs": sorted(services.engine.specs)}


async def _drop(client: aioredis.Redis, prefix: str) -> None:
    batch = [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]
    for i in range(0, len(batch), 500):
        await client.delete(*batch[i:i + 500])


# -- part 2: FIFO across 2 worker processes -----------------------------------------------------------
class Sender:
    def __init__(self, http: aiohttp.ClientSession, url: str, openid: str) -> None:
        self.http, self.url, self.openid = http, url, openid
        self.ids = wxreq.msg_ids(wxreq.run_tag())

    async def send(self, text: str) -> tuple[str, float, float]:
        ts, nonce = int(time.time()), str(time.perf_counter_ns())
        query = f"{wxreq.signed_query(pipeline.TOKEN, ts, nonce)}&openid={self.openid}"
        body = wxreq.text_xml(self.openid, next(self.ids), text, ts)
        sent = time.perf_counter()
        async with self.http.post(f"{self.url}?{query}", data=body.encode(),
                                  headers={"Content-Type": "text/xml"}) as resp:
            xml = await resp.text()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {xml[:200]}")
        found = _CONTENT.search(xml)
        return (found.group(1) if found else xml), sent, time.perf_counter()


async def _wait_ticket(r: Any, key: str, want: int, limit: float = 2.0) -> None:
    deadline = time.perf_counter() + limit
    while int(await r.get(key) or 0) < want:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"ticket {want} not taken within {limit} s")
        await asyncio.sleep(0.0002)


async def _fifo(url: str, prefix: str, bursts: int, data_key: str) -> dict[str, Any]:
    from storage.keys import KeyBuilder
    from storage.sealed import open_record
    from storage.sql.crypto import Keyring

    keys = KeyBuilder(prefix, pipeline.APPID)
    keyring = Keyring(data_key)
    openid = "oBENCHfifo" + f"{int(time.time() * 1000) % 10**18:018d}"
    raw = aioredis.Redis.from_url(pipeline.REDIS_URL)
    r = _Opened(raw, keys.session(openid), lambda b: open_record(keyring, openid, b))
    out: dict[str, Any] = {"openid_kind": "one student for every burst", "bursts": bursts}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=0)) as http:
        s = Sender(http, url, openid)
        reference = [(await s.send(text))[0] for text, _ in WALK]
        out["ordered"] = await _ordered(s, r, keys, openid, reference, bursts)
        out["concurrent"] = await _concurrent(s, r, keys, openid, bursts)
    await raw.aclose()
    return out


class _Opened:
    """The server's Redis, with the student's session record opened (it is sealed at rest)."""

    def __init__(self, client: aioredis.Redis, session_key: str, opener: Any) -> None:
        self.client, self.session_key, self.opener = client, session_key, opener

    async def get(self, key: str) -> bytes | None:
        value = await self.client.get(key)
        return self.opener(value) if key == self.session_key else value


async def _ordered(s: Sender, r: Any, keys: Any, openid: str, reference: list[str],
                   bursts: int) -> dict[str, Any]:
    lost = wrong = queued = 0
    walls: list[float] = []
    for _ in range(bursts):
        v0 = _state(await r.get(keys.session(openid)))[0]
        t0 = int(await r.get(keys.ticket(openid)) or 0)
        tasks = []
        for i, (text, _) in enumerate(WALK):
            tasks.append(asyncio.create_task(s.send(text)))
            await _wait_ticket(r, keys.ticket(openid), t0 + i + 1)
        got = await asyncio.gather(*tasks)
        v1 = _state(await r.get(keys.session(openid)))[0]
        lost += len(WALK) - (v1 - v0)
        wrong += sum(a != b for a, (b, _, _) in zip(reference, got, strict=True))
        queued += sum(got[i][1] < got[i - 1][2] for i in range(1, len(got)))
        walls.append(max(g[2] for g in got) - got[0][1])
    n = bursts * len(WALK)
    return {"messages": n, "lost_updates": lost, "replies_out_of_order_or_wrong": wrong,
            "sent_before_previous_reply": queued, "of_possible": bursts * (len(WALK) - 1),
            "burst_ms": _ms(walls)}


async def _concurrent(s: Sender, r: Any, keys: Any, openid: str, bursts: int) -> dict[str, Any]:
    lost = miscount = 0
    walls: list[float] = []
    for _ in range(bursts):
        for text, _ in WALK[:3]:  # to the name question
            await s.send(text)
        v0, state, retries = _state(await r.get(keys.session(openid)))
        assert state == "ask_name", state
        started = time.perf_counter()
        await asyncio.gather(*(s.send("123") for _ in range(10)))
        walls.append(time.perf_counter() - started)
        v1, _, after = _state(await r.get(keys.session(openid)))
        lost += 10 - (v1 - v0)
        miscount += abs(after.get("ask_name", 0) - retries.get("ask_name", 0) - 10)
        await s.send("取消")
    return {"messages": bursts * 10, "lost_updates": lost, "retry_count_off_by": miscount,
            "burst_ms": _ms(walls)}


def fifo(bursts: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="gradbot-engine-"))
    from storage.sql.crypto import generate_key

    bench = pipeline.Bench(pipeline.Config(), work, servers.BENCH / "results" / "logs")
    bench.logdir.mkdir(parents=True, exist_ok=True)
    bench.env["GRADBOT_DATA_KEY"] = data_key = generate_key()
    run = servers.start(servers.Variant("engine-fifo-2p", "gradbot", 2), bench.env, bench.logdir)
    try:
        workers = [p for p in run.tree() if p != run.proc.pid]
        cpu0 = {p: servers.cpu_us([p]) for p in workers}
        result = asyncio.run(_fifo(run.url, bench.prefix, bursts, data_key))
        result["worker_cpu_s"] = [round((servers.cpu_us([p]) - cpu0[p]) / 1e6, 2) for p in workers]
        result["server_log_errors"] = len(run.log_errors(0))
    finally:
        servers.stop(run)
        bench.cleanup()
    return result


def run(total: int, students: int, bursts: int, with_fifo: bool) -> dict[str, Any]:
    from bench import machine

    res: dict[str, Any] = {"meta": machine.describe()}
    try:
        import uvloop

        res["steps"] = uvloop.run(steps(total, students))
    except ImportError:  # pragma: no cover
        res["steps"] = asyncio.run(steps(total, students))
    if with_fifo:
        res["fifo"] = fifo(bursts)
    res["meta"]["loadavg_end"] = machine.loadavg()
    return res
