"""``gradbot serve [--host] [--port] [--workers N]``: the callback server, N processes on one port."""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import signal
import sys
import time
from collections.abc import Sequence

from aiohttp import web

from bot.app import create_app
from bot.commands.process import exit_now, freeze_heap, loop_name, run_loop
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
        exit_now(0)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_serve_child, args=(settings, args.host, args.port, args.access_log), daemon=False)
             for _ in range(args.workers)]
    # Ctrl-C (the whole process group gets it) and SIGTERM (systemd, the demo) alike: pass the stop on
    # as SIGTERM and keep waiting for the processes, each of which finishes its requests first.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: _stop(procs))
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    exit_now(0)


def _stop(procs: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for proc in procs:
        if proc.is_alive() and proc.pid:
            proc.terminate()


def _serve(settings: Settings, host: str, port: int, access_log: bool) -> None:
    setup_logging(settings)  # here, not in run(): spawned worker processes start with bare logging
    run_loop(_main(settings, host, port, access_log))


def _serve_child(settings: Settings, host: str, port: int, access_log: bool) -> None:
    _serve(settings, host, port, access_log)
    exit_now(0)


async def _main(settings: Settings, host: str, port: int, access_log: bool) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=logging.getLogger("aiohttp.access") if access_log else None,
                           handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=True, backlog=1024)
    await site.start()
    frozen = freeze_heap()
    log.info("gradbot listening on http://%s:%d/wechat (safe mode %s, %s, %d start-up objects frozen)", host, port,
             "on" if settings.safe_mode else "off", loop_name(), frozen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    started = time.monotonic()
    await runner.cleanup()  # stops listening, lets requests in progress finish, then closes every resource
    log.info("gradbot stopped in %.2f s", time.monotonic() - started)
