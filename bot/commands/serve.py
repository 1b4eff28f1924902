"""``gradbot serve [--host] [--port] [--workers N]``: the callback server, N processes on one port."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from bot.app import create_app
from bot.config import Settings, SettingsError
from bot.logs import setup_logging

log = logging.getLogger("bot.serve")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("serve", help="run the WeChat callback server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    p.add_argument("--access-log", action="store_true", help="log every request (off by default)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        # Photo checks run in a process pool so a 12 MP decode never stalls the event loop.
        settings = settings.with_(workers=args.workers, photo_workers=settings.photo_workers or 1)
    except SettingsError as exc:
        print(f"gradbot serve: {exc}", file=sys.stderr)
        return 2
    if args.workers <= 1:
        _serve(settings, args.host, args.port, args.access_log)
        return 0
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_serve, args=(settings, args.host, args.port, args.access_log), daemon=False)
             for _ in range(args.workers)]
    for proc in procs:
        proc.start()
    signal.signal(signal.SIGTERM, lambda *_: _stop(procs))
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        _stop(procs)
    return 0


def _stop(procs: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for proc in procs:
        if proc.is_alive() and proc.pid:
            proc.terminate()


def _serve(settings: Settings, host: str, port: int, access_log: bool) -> None:
    setup_logging(settings)  # here, not in run(): spawned worker processes start with bare logging
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(_main(settings, host, port, access_log))


async def _main(settings: Settings, host: str, port: int, access_log: bool) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=logging.getLogger("aiohttp.access") if access_log else None,
                           handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=True, backlog=1024)
    await site.start()
    log.info("gradbot listening on http://%s:%d/wechat (safe mode %s)", host, port,
             "on" if settings.safe_mode else "off")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
