"""``gradbot staff`` and ``gradbot broadcast`` against the same database, Redis and stand-in as the app.

One test runs the real entry point as a process; the others call ``bot.cli.main`` in a thread with
the same environment and stdin (starting Python and importing the app costs seconds per process).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from bot.cli import main
from bot.config import Settings
from bot.services.notify.limiter import CHINA
from storage.sql import broadcasts, staff
from tests.fixtures.console import HANJIANG, PROCEDURE, ConsoleWorld, openid_for
from tests.fixtures.wechat import gradbot_env

# HTTP-level tests run on PostgreSQL (production); the repositories run on both backends.
pytestmark = pytest.mark.parametrize("sql_url", ["postgresql"], indirect=True)


def env_of(settings: Settings) -> dict[str, str]:
    env = gradbot_env(settings)
    env.update({"GRADBOT_DATABASE_URL": settings.database_url, "GRADBOT_DATA_KEY": settings.data_key,
                "GRADBOT_DATA_DIR": str(settings.data_dir)})
    return env


async def process(settings: Settings, *args: str, stdin: str = "") -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, env=env_of(settings), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin.encode())
    return int(proc.returncode or 0), out.decode(), err.decode()


@pytest.fixture
def gradbot(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    async def run(settings: Settings, *args: str, stdin: str = "") -> tuple[int, str, str]:
        for key in [k for k in os.environ if k.startswith("GRADBOT_")]:
            monkeypatch.delenv(key)
        for key, value in env_of(settings).items():
            if key.startswith("GRADBOT_"):
                monkeypatch.setenv(key, value)
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


Cli = Callable[..., Awaitable[tuple[int, str, str]]]


async def test_staff_add_reads_the_password_from_stdin_and_refuses_bad_input(console_world: ConsoleWorld,
                                                                             gradbot: Cli) -> None:
    world = console_world
    code, out, _ = await process(world.settings, "staff", "add", "li", "--role", "reviewer", "--school",
                                 HANJIANG.code, stdin="a long enough password\n")  # the real entry point
    assert code == 0 and "li" in out
    browser = world.browser()
    assert (await browser.login("li", "a long enough password")).status == 200
    async with world.db.read() as conn:
        user = await staff.get(conn, "li")
    assert user is not None and user.password_hash.startswith("$argon2id$") and user.schools == [HANJIANG.code]
    cases: list[tuple[list[str], str, int, str]] = [
        (["li", "--role", "admin"], "another long password\n", 1, "exists"),
        (["wang", "--role", "admin"], "short\n", 2, "at least 10"),
        (["wang", "--role", "reviewer"], "a long enough password\n", 2, "needs at least one --school"),
        (["wang", "--role", "reviewer", "--school", "0000000000"], "a long enough password\n", 2, "unknown school"),
        (["bad name!", "--role", "admin"], "a long enough password\n", 2, "username"),
    ]
    for args, stdin, want, message in cases:
        code, _, err = await gradbot(world.settings, "staff", "add", *args, stdin=stdin)
        assert (code, message in err) == (want, True), (args, err)


async def test_broadcast_send_waits_for_the_end_and_status_prints_the_contract(console_world: ConsoleWorld,
                                                                              gradbot: Cli) -> None:
    world = console_world
    openids = [openid_for(i, "cli") for i in range(4)]
    for openid in openids:
        await world.seed(openid, "photo")
    code, out, err = await gradbot(world.settings, "broadcast", "send", "--template", "deadline_reminder",
                                   "--audience", f"school={HANJIANG.code},procedure={PROCEDURE},stage=not_paid",
                                   "--var", "message=请尽快缴费", "--rate", "100", "--json")
    assert code == 0, err
    final: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert final == {"id": final["id"], "total": 4, "sent": 4, "failed": 0, "pending": 0, "state": "done"}
    assert "100.0%" in err  # the progress bar
    code, out, _ = await gradbot(world.settings, "broadcast", "status", str(final["id"]), "--json")
    assert code == 0 and json.loads(out) == final
    for openid in openids:
        assert len([m for m in await world.stub.inbox(openid) if m["type"] == "template"]) == 1


async def test_broadcast_send_scheduled_returns_at_once(console_world: ConsoleWorld, gradbot: Cli) -> None:
    world = console_world
    code, out, _ = await gradbot(world.settings, "broadcast", "send", "--template", "deadline_reminder",
                                 "--audience", "stage=all", "--var", "message=x", "--at", "2099-01-01T09:00")
    assert code == 0
    async with world.db.read() as conn:
        scheduled = await broadcasts.get(conn, int(out))
    assert scheduled is not None and scheduled.state == "scheduled"
    assert scheduled.send_at == datetime(2099, 1, 1, 9, 0, tzinfo=CHINA)
    code, _, _ = await gradbot(world.settings, "broadcast", "cancel", out.strip())
    async with world.db.read() as conn:
        cancelled = await broadcasts.get(conn, int(out))
    assert code == 0 and cancelled is not None and cancelled.state == "cancelled"


async def test_broadcast_refuses_bad_arguments_clearly(console_world: ConsoleWorld, gradbot: Cli) -> None:
    world = console_world
    cases = [
        (["send", "--template", "deadline_reminder", "--audience", "stage=not_paid", "--var", "message=x"],
         "needs a procedure"),
        (["send", "--template", "deadline_reminder", "--audience", "colour=blue"], "cannot read"),
        (["send", "--template", "deadline_reminder", "--audience", "stage=everyone"], "unknown stage"),
        (["send", "--template", "nope", "--audience", "stage=all"], "nope"),
        (["send", "--template", "deadline_reminder", "--audience", "stage=all"], "message"),
    ]
    for args, message in cases:
        code, _, err = await gradbot(world.settings, "broadcast", *args)
        assert code == 2 and message in err and "Traceback" not in err, (args, err)
    code, _, err = await gradbot(world.settings, "broadcast", "status", "424242", "--json")
    assert code == 1 and "no broadcast 424242" in err
