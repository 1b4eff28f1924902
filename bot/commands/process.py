"""How the long-running commands (``serve``, ``worker``) run their event loop and end their process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop (asyncio's own loop where uvloop is missing); a Ctrl-C ends it quietly."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(main)


def freeze_heap() -> int:
    """Take what start-up built (dialog engine, school index, region and pinyin tables, templates) out
    of the cyclic GC's sight; call it once the process is ready to serve.

    Those ~400,000 objects live as long as the process, yet every full collection walked them all:
    180 ms with the event loop stopped, a latency spike for every request in flight (cProfile charged
    it to whatever allocated at that moment). Frozen, a full collection walks only what requests
    made since (Python's own advice for long-running servers, ``gc.freeze``). Returns how many
    objects were frozen (said in the start-up log line).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: which event loop runs this process (said in the start-up log line)."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def exit_now(code: int = 0) -> NoReturn:
    """End the process at once, skipping the interpreter's teardown; call it once everything is closed.

    The teardown frees every object one by one and runs the cyclic GC over the whole heap (dialog
    engine, school index, templates): 1-3 s per ``serve`` process on a busy 2-core machine, after
    the app had already closed its connections, so a stop waited on nothing but memory being freed.
    Logs and standard streams are flushed first.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
