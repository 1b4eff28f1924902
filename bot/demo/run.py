"""``python -m bot.demo`` (``make demo``): the whole product on one laptop, every port on loopback.

One orchestrator: ``gradbot serve`` (with the chat simulator) and ``gradbot worker`` are child
processes in their own sessions, started first (they take longest to boot); the WeChat stand-in and
the pay sandbox run in this process. A Ctrl-C reaches only this process, which then stops the rest
in order: web first (no new work), then the worker (it finishes running jobs), then the pay
sandbox and the stand-in, then a private redis-server. Heavy modules are imported only once the
children are booting, so their start-up and these imports share the wait.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.demo.hints import HINTS
from bot.demo.plan import HOST, DemoError, Plan, RedisChoice, choose_redis, plan_from_env
from bot.sandbox.pay_keys import SandboxKeys, load_or_create

PR_SET_PDEATHSIG = 1
GRACE_S = {"gradbot serve": 15.0, "gradbot worker": 40.0}  # the worker gives running jobs 30 s


def say(line: str) -> None:
    print(f"demo: {line}", flush=True)


# -- child processes ---------------------------------------------------------------------------

@dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process


@dataclass
class Children:
    items: list[Child] = field(default_factory=list)

    async def start(self, name: str, args: list[str], env: Mapping[str, str]) -> Child:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", *args, env=dict(env),
                                                    start_new_session=True, preexec_fn=_end_with_parent)
        child = Child(name, proc)
        self.items.append(child)
        return child

    async def first_exit(self) -> Child:
        waits = {asyncio.ensure_future(c.proc.wait()): c for c in self.items}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in waits:
                future.cancel()
        return waits[next(iter(done))]

    async def stop_all(self) -> None:
        for child in self.items:  # start order: web before worker
            await _stop(child)

    def kill_all(self) -> None:
        for child in self.items:
            if child.proc.returncode is None:
                child.proc.kill()


def _end_with_parent() -> None:
    """In the child, before exec: a SIGINT when the orchestrator dies, even by SIGKILL (Linux only;
    elsewhere an orchestrator killed outright leaves the children to be stopped by hand)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGINT)


async def _stop(child: Child) -> None:
    if child.proc.returncode is not None:
        return
    say(f"stopping {child.name}")
    child.proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(child.proc.wait(), GRACE_S.get(child.name, 15.0))
    except TimeoutError:
        say(f"{child.name} did not stop in time; killing it")
        child.proc.kill()
        await child.proc.wait()


def check_free(port: int, what: str, variable: str) -> None:
    """Refuse a taken port up front: serve binds with SO_REUSEPORT and would silently share it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is fine
        try:
            probe.bind((HOST, port))
        except OSError:
            raise DemoError(f"port {port} ({what}) is in use: stop what runs there or set {variable}") from None


# -- the banner --------------------------------------------------------------------------------

def banner(plan: Plan, choice: RedisChoice, username: str, password: str, ready_s: float) -> str:
    h = HINTS
    console = (f"user {username}, password {password}" if not choice.memory
               else "off: it needs Redis (start redis-server, or set GRADBOT_REDIS_URL)")
    rule = "─" * 78
    lines = [
        rule,
        f"gradbot demo is up, ready in {ready_s:.1f} s. Ctrl-C stops everything.",
        f"  Chat simulator   {plan.public_url}/simulator/   (one student per browser tab)",
        f"  Staff console    {plan.public_url}/console/   {console}",
        f"  Pay sandbox      {plan.pay_url}   (a pay link in the chat opens the pay page; its",
        "                   「打开支付沙箱收银台」 button opens the cashier where you pay)",
        f"  WeChat stand-in  {plan.stub_url}/_stub/inbox/<openid>",
        f"  State            {choice.how}, key prefix {plan.prefix}; data in {plan.data_dir}",
        f"Try it: menu 办理 → 毕业照采集（演示）, or type {h['start']}. Made-up test data: {h['name']} "
        f"{h['id_number']}, {h['province']} {h['city']} {h['school']}, 采集码 {h['code']}.",
    ]
    if choice.memory:
        lines.append("Without Redis there is no job worker: template messages (review results) are off.")
    return "\n".join([*lines, rule])


# -- the run -----------------------------------------------------------------------------------

def _signals(stop: asyncio.Event, children: Children) -> None:
    loop = asyncio.get_running_loop()

    def pressed() -> None:
        if stop.is_set():  # a second Ctrl-C: no more waiting
            children.kill_all()
        stop.set()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal was closed
        loop.add_signal_handler(sig, pressed)


async def _until_stopped(stop: asyncio.Event, children: Children) -> int:
    stopping = asyncio.ensure_future(stop.wait())
    exited = asyncio.ensure_future(children.first_exit())
    done, _ = await asyncio.wait({stopping, exited}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    exited.cancel()
    if stopping in done:
        say("asked to stop (Ctrl-C, SIGTERM or SIGHUP): stopping everything")
        return 0
    child = exited.result()
    say(f"{child.name} exited with code {child.proc.returncode}; stopping the rest")
    return 1


async def _ready_unless_stopped(ready: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Wait for gradbot to be ready; False as soon as a Ctrl-C comes first (a slow first start must
    not keep it waiting)."""
    waiting, stopping = asyncio.ensure_future(ready), asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not waiting.done():
            waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    if waiting.cancelled():
        return False
    waiting.result()  # a start that failed raises here
    return True


async def run(env: Mapping[str, str], started: float) -> int:
    plan = plan_from_env(env)
    for variable, port, what in (("GRADBOT_DEMO_PORT", plan.web_port, "gradbot"),
                                 ("GRADBOT_DEMO_STUB_PORT", plan.stub_port, "WeChat stand-in"),
                                 ("GRADBOT_DEMO_PAY_PORT", plan.pay_port, "pay sandbox")):
        check_free(port, what, variable)
    plan.data_dir.mkdir(parents=True, exist_ok=True)
    choice = choose_redis(env, plan.data_dir)
    say(f"state: {choice.how}")
    try:
        return await _run(plan, choice, env, started)
    finally:
        choice.stop()


async def _run(plan: Plan, choice: RedisChoice, env: Mapping[str, str], started: float) -> int:
    keys = load_or_create(plan.data_dir)
    child_env = plan.env(choice.url, keys.env(plan.pay_url), env)
    stop, children = asyncio.Event(), Children()
    _signals(stop, children)
    try:
        web_child = await children.start("gradbot serve", ["serve", "--host", HOST, "--port", str(plan.web_port)],
                                         child_env)
        if not choice.memory:
            await children.start("gradbot worker", ["worker"], child_env)
        say(f"started {' and '.join(c.name for c in children.items)}; waiting for {plan.public_url}/readyz")
        return await _with_sandboxes(plan, choice, child_env, keys, children, web_child, stop, started)
    finally:
        await children.stop_all()


async def _with_sandboxes(plan: Plan, choice: RedisChoice, child_env: Mapping[str, str], keys: SandboxKeys,
                          children: Children, web_child: Child, stop: asyncio.Event, started: float) -> int:
    from bot.demo.accounts import ensure_staff, push_menu
    from bot.demo.servers import sandboxes, wait_ready

    settings = plan.settings(child_env)
    async with sandboxes(plan, settings, keys, say):
        menu = asyncio.ensure_future(push_menu(settings))
        try:
            if not await _ready_unless_stopped(wait_ready(f"{plan.public_url}/readyz",
                                                          lambda: web_child.proc.returncode), stop):
                say("asked to stop before gradbot was ready: stopping everything")
                return 0
            ready_s = time.monotonic() - started
            login = await ensure_staff(settings)
            await menu
        finally:
            menu.cancel()
        print(banner(plan, choice, login.username, login.password, ready_s), flush=True)
        try:
            return await _until_stopped(stop, children)
        finally:
            await children.stop_all()  # before the stand-ins they talk to go away


def main() -> int:
    started = time.monotonic()
    try:
        return asyncio.run(run(os.environ, started))
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
