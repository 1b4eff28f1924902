"""``gradbot worker``: run the durable background jobs (customer-service sends, late replies)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from prometheus_client import start_http_server
from redis.exceptions import RedisError

from bot.commands.process import exit_now, freeze_heap, loop_name, run_loop
from bot.config import Settings, SettingsError
from bot.jobs import JOB_TIMEOUT_S, RECLAIM_AFTER_S, build_broker, running_worker
from bot.logs import setup_logging
from bot.metrics import Metrics

log = logging.getLogger("bot.jobs")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("worker", help="run background jobs from the Redis queue")
    p.add_argument("--concurrency", type=int, default=16, help="jobs run at once by this process")
    p.add_argument("--reclaim-after", type=float, default=RECLAIM_AFTER_S, metavar="SECONDS",
                   help=f"take over a job another worker left unacked this long (> {JOB_TIMEOUT_S}, the job timeout)")
    p.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics on 127.0.0.1:PORT")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gradbot worker: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    if settings.memory_state:
        print("gradbot worker: GRADBOT_REDIS_URL=memory:// runs jobs inside `gradbot serve`; "
              "a separate worker needs redis://", file=sys.stderr)
        return 2
    if args.reclaim_after <= JOB_TIMEOUT_S:
        log.warning("--reclaim-after %.0f s is not above the job timeout (%d s): a slow job may run twice",
                    args.reclaim_after, JOB_TIMEOUT_S)
    metrics = Metrics()
    if args.metrics_port:
        start_http_server(args.metrics_port, addr="127.0.0.1", registry=metrics.registry)
    try:
        run_loop(_main(settings, args, metrics))  # on uvloop, as gradbot serve
    except Exception as exc:
        cause = _connection_failure(exc)
        if cause is None:
            raise
        print(f"gradbot worker: Redis at {settings.redis_url} unavailable: {cause}", file=sys.stderr)
        return 1
    exit_now(0)  # jobs finished or left unacked, connections closed: nothing left to tear down


def _connection_failure(exc: BaseException) -> BaseException | None:
    """The Redis/network error behind ``exc``, looking inside exception groups (taskiq uses anyio)."""
    if isinstance(exc, RedisError | OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        return next(filter(None, map(_connection_failure, exc.exceptions)), None)
    return None


async def _main(settings: Settings, args: argparse.Namespace, metrics: Metrics) -> None:
    broker = build_broker(settings, reclaim_after=args.reclaim_after, metrics=metrics)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(broker, args.concurrency) as worker:
        frozen = freeze_heap()
        log.info("gradbot worker reading %s (concurrency %d, %s, %d start-up objects frozen)", broker.queue_name,
                 args.concurrency, loop_name(), frozen)
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({stopping, worker.task}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if stop.is_set():
            log.info("stopping: finishing running jobs; unfinished ones are re-run by another worker")
