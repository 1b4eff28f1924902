"""The demo's in-process servers (WeChat stand-in, pay sandbox) and its wait for gradbot's /readyz.

Imported only after gradbot's own processes were started, so their start-up runs beside these imports.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import aiohttp
from aiohttp import web

from bot.config import Settings
from bot.demo.plan import HOST, DemoError, Plan
from bot.sandbox.pay_keys import SandboxKeys
from bot.sandbox.pay_sandbox import SandboxConfig, create_pay_sandbox
from bot.sandbox.stub_state import StubConfig
from bot.sandbox.wechat_stub import create_stub_app
from bot.services.notify.templates import load_templates

READY_TIMEOUT_S = 180.0  # a first start seeds the school catalogue and generates keys


@asynccontextmanager
async def serving(app: web.Application, port: int, what: str, say: Callable[[str], None]) -> AsyncIterator[None]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, port).start()
        yield
    finally:
        say(f"stopping the {what}")
        await runner.cleanup()


def stand_in_app(settings: Settings) -> web.Application:
    """The stand-in knows the account's credentials and every template gradbot is configured to send."""
    templates = load_templates(settings.notify_templates).stub_templates()
    return create_stub_app(StubConfig(appid=settings.wechat_appid, secret=settings.wechat_secret,
                                      templates=templates))


@asynccontextmanager
async def sandboxes(plan: Plan, settings: Settings, keys: SandboxKeys,
                    say: Callable[[str], None]) -> AsyncIterator[None]:
    """Both stand-ins listening; on exit the pay sandbox stops first, then the WeChat stand-in."""
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serving(stand_in_app(settings), plan.stub_port, "WeChat stand-in", say))
        pay = create_pay_sandbox(SandboxConfig(keys=keys, appid=settings.wechat_appid))
        await stack.enter_async_context(serving(pay, plan.pay_port, "pay sandbox", say))
        yield


async def wait_ready(url: str, exited: Callable[[], int | None]) -> None:
    """Until ``url`` answers 200; ``exited`` gives gradbot serve's exit code once it has ended."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            code = exited()
            if code is not None:
                raise DemoError(f"gradbot serve exited with code {code} (its log is above)")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise DemoError(f"gradbot did not answer {url} within {READY_TIMEOUT_S:.0f} s")
