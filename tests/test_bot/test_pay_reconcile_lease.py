"""Reconciliation runs once per interval across processes: two reconcilers on one Redis (as two web
workers or two machines would be) query the pay sandbox once per round, not once each, and when the
lease holder dies mid-pass the other takes the next round. Queries are counted on the wire: the
reconcilers' WeChat Pay clients talk to the sandbox through a counting HTTP relay."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot import keys
from bot.services.payments.client import PayClient
from bot.services.payments.config import PayConfig, link_secret
from bot.services.payments.fees import load_fees
from bot.services.payments.links import Sealer
from bot.services.payments.reconcile import Reconciler
from bot.services.payments.service import Payments
from bot.web.pay import RECONCILING
from storage.keys import KeyBuilder
from storage.lease import Lease
from tests.fixtures.pay import STUDENT, PayWorld, eventually

QUERY = "/v3/pay/transactions/out-trade-no/"
LEASE = 0.6  # seconds; the product's lease lasts one interval (60 s)


@dataclass
class Relay:
    """Forwards every request to the sandbox unchanged (the SDK's signature covers path and body) and
    counts order queries; ``gate`` cleared makes queries wait, as a worker stuck mid-pass would."""

    upstream: str
    http: aiohttp.ClientSession
    queries: list[str] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def forward(self, request: web.Request) -> web.Response:
        if request.path.startswith(QUERY):
            self.queries.append(request.path.rsplit("/", 1)[1])
            await self.gate.wait()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self.http.request(request.method, self.upstream + request.raw_path, headers=headers,
                                     data=await request.read()) as resp:
            body = await resp.read()
            kept = {k: v for k, v in resp.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "date", "server")}
            return web.Response(status=resp.status, body=body, headers=kept)


@pytest.fixture
async def relay(pay_world: PayWorld) -> AsyncIterator[tuple[Relay, str]]:
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        relay = Relay(pay_world.sandbox.url, http)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", relay.forward)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            yield relay, str(server.make_url("")).rstrip("/")
        finally:
            relay.gate.set()
            await server.close()


async def _ignore(order: object) -> None:
    return None


@contextlib.asynccontextmanager
async def _worker(world: PayWorld, api_base: str, lease: Lease | None) -> AsyncIterator[Reconciler]:
    """What one more web worker builds in ``bot/web/pay.py``: its own WeChat Pay client, same database."""
    settings = world.settings.with_(pay_api_base=api_base)
    config = PayConfig.from_settings(settings)
    async with PayClient(config) as client:
        payments = Payments(config, client, world.db, load_fees(), Sealer(link_secret(settings)),
                            world.app[keys.METRICS], world.clock)
        yield Reconciler(payments, _ignore, interval=LEASE, lease=lease)


def _lease(world: PayWorld, client: aioredis.Redis) -> Lease:
    return Lease(client, KeyBuilder(world.settings.redis_prefix, world.settings.wechat_appid).reconcile_lease(), LEASE)


async def _open_unpaid_order(world: PayWorld) -> str:
    """A prepaid order the student has not paid, 10 minutes old: every pass asks WeChat Pay about it."""
    url = world.link()
    await world.sign_in(STUDENT)
    status, html = await world.open_in_wechat(url)
    assert status == 200, html
    status, params = await world.prepay(url)
    assert status == 200, params
    order = await world.order_of()
    world.clock.advance(600)
    return order.out_trade_no


async def test_the_app_reconciles_under_a_shared_lease_of_one_interval(pay_world: PayWorld) -> None:
    reconciler = pay_world.app[RECONCILING]
    assert reconciler.lease is not None
    assert reconciler.lease.key == KeyBuilder(pay_world.settings.redis_prefix,
                                              pay_world.settings.wechat_appid).reconcile_lease()
    assert reconciler.lease.ttl == reconciler.interval


async def test_two_workers_query_each_order_once_per_round(pay_world: PayWorld, relay: tuple[Relay, str],
                                                           redis_client: aioredis.Redis) -> None:
    world, (wire, api_base) = pay_world, relay
    number = await _open_unpaid_order(world)
    async with _worker(world, api_base, None) as a, _worker(world, api_base, None) as b:
        await asyncio.gather(a.run_round(), b.run_round())
    assert wire.queries == [number, number]  # without the lease: every worker asks (the old behaviour)

    wire.queries.clear()
    async with (_worker(world, api_base, _lease(world, redis_client)) as a,
                _worker(world, api_base, _lease(world, redis_client)) as b):
        results = await asyncio.gather(a.run_round(), b.run_round())
        assert sorted(results, key=lambda r: r is None) == [{"paid": 0, "closed": 0, "open": 1, "failed": 0}, None]
        assert wire.queries == [number]  # one round, one query
        assert await asyncio.gather(a.run_round(), b.run_round()) == [None, None]  # same interval: nobody
        await asyncio.sleep(LEASE + 0.2)
        assert sum(r is not None for r in await asyncio.gather(b.run_round(), a.run_round())) == 1
    assert wire.queries == [number, number]  # the next interval: one more query


async def test_when_the_holder_dies_mid_pass_the_other_worker_takes_the_next_round(
        pay_world: PayWorld, relay: tuple[Relay, str], redis_client: aioredis.Redis) -> None:
    world, (wire, api_base) = pay_world, relay
    number = await _open_unpaid_order(world)
    lease_a = _lease(world, redis_client)
    async with _worker(world, api_base, lease_a) as a, _worker(world, api_base, _lease(world, redis_client)) as b:
        wire.gate.clear()  # worker a's query hangs: a holds the lease mid-pass
        stuck = asyncio.create_task(a.run_round())
        await eventually(lambda: _asked(wire, 1))
        await asyncio.sleep(LEASE * 2)  # longer than the lease: a renews it while its pass runs
        assert await b.run_round() is None and wire.queries == [number]
        assert await redis_client.get(lease_a.key) == lease_a.token.encode()

        stuck.cancel()  # worker a dies: nothing renews (or releases) its lease any more
        with contextlib.suppress(asyncio.CancelledError):
            await stuck
        wire.gate.set()
        assert await b.run_round() is None  # not yet: a's last lease still runs

        async def expired() -> bool:
            return not await redis_client.exists(lease_a.key)
        await eventually(expired, timeout=LEASE * 3)
        counts = await b.run_round()
    assert counts == {"paid": 0, "closed": 0, "open": 1, "failed": 0}  # b asked WeChat Pay and got an answer
    assert wire.queries == [number, number]


async def _asked(wire: Relay, count: int) -> bool:
    return len(wire.queries) >= count


async def test_the_loop_ends_on_its_flag_without_a_cancel() -> None:
    """Shutdown sets ``stopping`` before cancelling: redis-py can swallow a cancellation (Python 3.11's
    wait_for), and a loop stopped by cancel() alone would then run on and hold the shutdown."""
    passes: list[int] = []

    async def on_paid(_order: object) -> None:
        return None

    reconciler = Reconciler(payments=None, on_paid=on_paid, interval=0.01)  # type: ignore[arg-type]

    async def run_once() -> dict[str, int]:
        passes.append(1)
        return {}

    reconciler.run_once = run_once  # type: ignore[method-assign]
    loop = asyncio.create_task(reconciler.loop())
    await eventually(lambda: _ran(passes))
    reconciler.stopping = True
    await asyncio.wait_for(loop, 1.0)  # no cancel() here
    assert passes


async def _ran(passes: list[int]) -> bool:
    return bool(passes)
