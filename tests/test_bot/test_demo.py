"""``make demo`` (bot.demo): its plan, its Redis choice, its staff account, and the real thing started
as a user starts it, then stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.config import Settings
from bot.console.auth import check_password
from bot.demo.accounts import PASSWORD_FILE, STAFF_USER, ensure_staff
from bot.demo.hints import HINTS
from bot.demo.plan import DemoError, choose_redis, plan_from_env
from bot.services.identity.documents import IdType, validate_id
from bot.services.identity.sandbox import SandboxVerifier, make_test_id
from storage.sql import staff
from storage.sql.db import Database
from storage.sql.migrate import ensure_schema
from tests.fixtures.demo import ROOT, Demo, DemoEnv, RunningDemo, processes_of, running
from tests.fixtures.services import free_port

SLOW_S = 300  # whole demos start and stop here; a loaded CI box takes several times the quiet figures


def test_the_plan_uses_embedded_defaults_and_drops_the_callers_settings(tmp_path: Path) -> None:
    caller = {"GRADBOT_DATABASE_URL": "postgresql+asyncpg://prod/db", "GRADBOT_WECHAT_API_BASE": "https://api.weixin.qq.com",
              "GRADBOT_WECHAT_AES_KEY": "k" * 43, "GRADBOT_DATA_DIR": str(tmp_path), "PATH": "/usr/bin"}
    plan = plan_from_env(caller)
    env = plan.env("memory://", {"GRADBOT_PAY_MCHID": "1900000001"}, caller)
    assert "GRADBOT_DATABASE_URL" not in env and env["PATH"] == "/usr/bin"
    assert env["GRADBOT_WECHAT_API_BASE"] == "http://127.0.0.1:8081" and env["GRADBOT_SIMULATOR"] == "1"
    assert env["GRADBOT_WECHAT_AES_KEY"] == "k" * 43  # safe mode may be tried in the demo
    assert env["GRADBOT_REDIS_PREFIX"] == "gbdemo" and env["GRADBOT_PAY_MCHID"] == "1900000001"
    assert plan.settings(env).simulator and plan.settings(env).data_dir == tmp_path


async def test_the_printed_test_identity_is_made_up_and_passes_the_sandbox_check() -> None:
    assert HINTS["id_number"] == make_test_id("420302", "20010203", "141")
    assert validate_id(IdType.RESIDENT_ID, HINTS["id_number"]).ok
    verdict = await SandboxVerifier().verify(IdType.RESIDENT_ID, HINTS["name"], HINTS["id_number"])
    assert verdict.outcome.name == "MATCH"


@pytest.mark.parametrize("env", [{"GRADBOT_DEMO_PORT": "80a"}, {"GRADBOT_DEMO_PAY_PORT": "70000"},
                                 {"GRADBOT_DEMO_PORT": "8081"}])
def test_bad_ports_stop_the_demo_with_a_reason(env: dict[str, str]) -> None:
    with pytest.raises(DemoError, match="port"):
        plan_from_env(env)


def test_redis_is_the_callers_then_a_private_server_then_memory(redis_url: str, tmp_path: Path) -> None:
    assert choose_redis({"GRADBOT_REDIS_URL": redis_url}, tmp_path).url == redis_url
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    assert choose_redis({"GRADBOT_REDIS_URL": nobody}, tmp_path, which=lambda _: None).memory
    if (server := os.environ.get("GRADBOT_TEST_REDIS_SERVER", "/usr/bin/redis-server")) and Path(server).exists():
        private = choose_redis({"GRADBOT_REDIS_URL": nobody}, tmp_path, which=lambda _: server)
        try:
            assert private.url.startswith("unix://") and "private redis-server" in private.how
        finally:
            private.stop()
        assert private.process is not None and private.process.poll() is not None
        assert (tmp_path / "redis").is_dir()


async def test_the_staff_account_is_made_once_and_its_password_kept(settings: Settings) -> None:
    async with Database(settings.sql_url) as db:
        await ensure_schema(db)
    first = await ensure_staff(settings)
    again = await ensure_staff(settings)
    assert first.created and not again.created and again.password == first.password
    (settings.data_dir / PASSWORD_FILE).unlink()
    reset = await ensure_staff(settings)
    assert not reset.created and reset.password != first.password
    async with Database(settings.sql_url) as db, db.read() as conn:
        user = await staff.get(conn, STAFF_USER)
    assert user is not None and user.is_admin and check_password(user.password_hash, reset.password)
    assert (settings.data_dir / PASSWORD_FILE).stat().st_mode & 0o077 == 0


# -- the real thing ----------------------------------------------------------------------------

@pytest.mark.timeout(SLOW_S)
async def test_make_demo_starts_stops_in_order_keeps_its_data_and_leaves_no_child_behind(
        running_demo: RunningDemo, demo_env: DemoEnv) -> None:
    async with running_demo() as demo, aiohttp.ClientSession() as http:
        for url in (f"{demo.base}/readyz", f"{demo.base}/simulator/", f"{demo.base}/console/login"):
            async with http.get(url) as resp:
                assert resp.status == 200, url
        async with http.get(f"{demo.stand_in}/_stub/menu") as resp:
            assert len((await resp.json())["button"]) == 3
        first_password = demo.password
        assert "gradbot worker reading" in demo.said  # the worker runs beside the web process
    assert demo.proc.returncode == 0, demo.said
    assert not processes_of(demo_env.env["GRADBOT_DATA_DIR"])
    assert demo.said.index("stopping gradbot serve") < demo.said.index("stopping gradbot worker") < demo.said.index(
        "stopping the WeChat stand-in")
    data = Path(demo_env.env["GRADBOT_DATA_DIR"])
    assert (data / "gradbot.sqlite3").exists() and (data / "pay-sandbox").is_dir()
    async with running_demo() as again:
        assert again.password == first_password  # same data, same account
        if sys.platform.startswith("linux"):  # PR_SET_PDEATHSIG
            await _killed_outright_takes_its_children_along(again)


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


async def _killed_outright_takes_its_children_along(demo: Demo) -> None:
    children = _children_of(demo.proc.pid)
    assert len(children) == 2  # gradbot serve and gradbot worker, each in its own session
    demo.proc.kill()  # no chance to stop them in order
    await demo.proc.wait()
    for _ in range(600):
        if not _alive(children):
            break
        await asyncio.sleep(0.05)
    assert not _alive(children)


@pytest.mark.timeout(SLOW_S)
async def test_without_redis_it_runs_on_memory_and_says_what_is_off(demo_env: DemoEnv) -> None:
    memory = DemoEnv({**demo_env.env, "GRADBOT_REDIS_URL": "memory://"}, demo_env.ports)
    async with running(memory) as demo, aiohttp.ClientSession() as http:
        assert "/console/   off: it needs Redis" in demo.said and "template messages" in demo.said
        assert "gradbot worker" not in demo.said  # jobs run inside gradbot serve
        body = {"openid": "oSim_Memory_000000000001", "event": "subscribe"}
        async with http.post(f"{demo.base}/simulator/api/send", json=body) as resp:
            assert resp.status == 200 and "欢迎" in (await resp.json())["replies"][0]["content"]
    assert demo.proc.returncode == 0, demo.said


@pytest.mark.timeout(SLOW_S)
async def test_ctrl_c_while_gradbot_is_still_starting_stops_everything_at_once(demo_env: DemoEnv) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.demo", cwd=ROOT, env=demo_env.env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    said = ""
    while "waiting for" not in said:  # the children were started; gradbot needs seconds more
        line = await proc.stdout.readline()
        assert line, said
        said += line.decode()
    proc.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    said += out.decode()
    assert proc.returncode == 0, said
    assert "before gradbot was ready" in said and "Ctrl-C stops everything" not in said
    assert not processes_of(demo_env.env["GRADBOT_DATA_DIR"])


@pytest.mark.timeout(SLOW_S)
async def test_a_taken_port_is_named(demo_env: DemoEnv) -> None:
    port = demo_env.ports["GRADBOT_DEMO_STUB_PORT"]
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    try:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.demo", cwd=ROOT, env=demo_env.env,
                                                    stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        server.close()
        await server.wait_closed()
    assert proc.returncode == 2
    assert f"port {port}" in err.decode() and "GRADBOT_DEMO_STUB_PORT" in err.decode()
