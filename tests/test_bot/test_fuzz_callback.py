"""A short run of bench/fuzz.py inside the suite: a few hundred hypothesis-built callbacks, plain and safe.

The real app serves on a loopback port from its own thread (hypothesis drives synchronous HTTP).
The 10-minute runs and their figures are in docs/benchmarks.md ("Callback fuzzing").
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from bench.fuzz import AES_KEY, APPID, TOKEN, Tally, fuzz_for, healthz
from bot.app import create_app
from bot.config import Settings
from tests.fixtures.services import free_port

EXAMPLES = 150


class AppThread:
    """gradbot's app on 127.0.0.1:<port>, in a thread with its own event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.runner: web.AppRunner | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.runner = web.AppRunner(create_app(self.settings))
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def __enter__(self) -> str:
        self.thread.start()
        assert self.ready.wait(60), "the app did not start"
        return f"http://127.0.0.1:{self.port}/wechat"

    def __exit__(self, *exc: object) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


@pytest.fixture(scope="module", params=["plain", "safe"])
def served(request: pytest.FixtureRequest, redis_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, bool]]:
    safe = request.param == "safe"
    settings = Settings(redis_url=redis_url, redis_prefix=f"gbtfuzz{secrets.token_hex(4)}", wechat_token=TOKEN,
                        wechat_appid=APPID, wechat_aes_key=AES_KEY if safe else "",
                        data_dir=Path(tmp_path_factory.mktemp("fuzz")), wechat_api_base=f"http://127.0.0.1:{free_port()}")
    with AppThread(settings) as url:
        yield url, safe


def test_hostile_callbacks_never_get_a_500_or_hang(served: tuple[str, bool]) -> None:
    url, safe = served
    tally = Tally()
    fuzz_for(url, safe, EXAMPLES, tally, hang=6.0)
    assert tally.failures == []
    assert sum(tally.statuses.values()) == EXAMPLES and set(tally.statuses) <= {200, 400, 403, 413}
    assert tally.statuses[200] > 0 and tally.statuses[400] > 0  # it reached the pipeline and the parser
    assert healthz(url)
