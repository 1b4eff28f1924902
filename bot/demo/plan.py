"""What ``make demo`` runs where: ports, URLs, which Redis, and the environment every process gets.

Embedded defaults only: the demo ignores the caller's GRADBOT_* settings (a production
``GRADBOT_DATABASE_URL`` in the shell must never meet demo data) except the few listed in
``PASSED_THROUGH`` and its own ``GRADBOT_DEMO_*`` overrides.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bot.config import Settings

HOST = "127.0.0.1"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PREFIX = "gbdemo"  # demo keys never mix with gradbot's own ("gb") in a shared Redis
PASSED_THROUGH = ("GRADBOT_WECHAT_AES_KEY", "GRADBOT_LOG_JSON", "GRADBOT_PHOTO_WORKERS")
PORTS = {"GRADBOT_DEMO_PORT": 8080, "GRADBOT_DEMO_STUB_PORT": 8081, "GRADBOT_DEMO_PAY_PORT": 8082}


class DemoError(RuntimeError):
    """The demo cannot start; the message says why and what to do."""


@dataclass
class RedisChoice:
    url: str  # redis://…, unix://… or memory://
    how: str  # for the log: where it came from
    process: subprocess.Popen[bytes] | None = None
    socket_dir: Path | None = None

    @property
    def memory(self) -> bool:
        return self.url.startswith("memory://")

    def stop(self) -> None:
        """A private redis-server saves its data (``--save``) when asked to stop."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


@dataclass(frozen=True)
class Plan:
    data_dir: Path
    web_port: int
    stub_port: int
    pay_port: int
    prefix: str = PREFIX
    passed: Mapping[str, str] = field(default_factory=dict)

    @property
    def public_url(self) -> str:
        return f"http://{HOST}:{self.web_port}"

    @property
    def stub_url(self) -> str:
        return f"http://{HOST}:{self.stub_port}"

    @property
    def pay_url(self) -> str:
        return f"http://{HOST}:{self.pay_port}"

    def env(self, redis_url: str, pay_env: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
        """The environment of ``gradbot serve`` and ``gradbot worker``."""
        env = {k: v for k, v in base.items() if not k.startswith("GRADBOT_")}
        env.update(self.passed)
        env.update({
            "GRADBOT_REDIS_URL": redis_url, "GRADBOT_REDIS_PREFIX": self.prefix,
            "GRADBOT_DATA_DIR": str(self.data_dir), "GRADBOT_PUBLIC_URL": self.public_url,
            "GRADBOT_WECHAT_API_BASE": self.stub_url, "GRADBOT_SIMULATOR": "1",
            "GRADBOT_CONSOLE_COOKIE_SECURE": "0",  # plain http on loopback
            "PYTHONUNBUFFERED": "1",
        })
        env.update(pay_env)
        return env

    def settings(self, env: Mapping[str, str]) -> Settings:
        return Settings.from_env({k: v for k, v in env.items() if k.startswith("GRADBOT_")})


def plan_from_env(env: Mapping[str, str]) -> Plan:
    ports = {}
    for name, default in PORTS.items():
        raw = env.get(name, str(default))
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise DemoError(f"{name}={raw!r}: a port number is needed")
        ports[name] = int(raw)
    if len(set(ports.values())) < len(ports):
        raise DemoError(f"the demo needs three different ports: {ports}")
    data_dir = Path(env.get("GRADBOT_DATA_DIR", "var")).resolve()
    passed = {k: env[k] for k in PASSED_THROUGH if env.get(k)}
    return Plan(data_dir, ports["GRADBOT_DEMO_PORT"], ports["GRADBOT_DEMO_STUB_PORT"], ports["GRADBOT_DEMO_PAY_PORT"],
                prefix=env.get("GRADBOT_DEMO_PREFIX", PREFIX), passed=passed)


# -- Redis -------------------------------------------------------------------------------------

def answers(url: str) -> bool:
    """Redis >= 6 answers at ``url``."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            version = str(client.info("server").get("redis_version", "0"))
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False
    return int(version.split(".")[0]) >= 6


def choose_redis(env: Mapping[str, str], data_dir: Path,
                 which: Callable[[str], str | None] = shutil.which) -> RedisChoice:
    """The caller's Redis if it answers; else a private redis-server keeping its data in the data dir;
    else the single-process memory:// store."""
    url = env.get("GRADBOT_REDIS_URL", DEFAULT_REDIS_URL)
    if url.startswith("memory://"):
        return RedisChoice(url, "memory:// as asked (GRADBOT_REDIS_URL)")
    if answers(url):
        return RedisChoice(url, f"the Redis at {url}")
    server = which("redis-server")
    if server is None:
        return RedisChoice("memory://", f"memory:// (nothing answers at {url} and no redis-server is on PATH)")
    return _private_redis(server, data_dir, url)


def _private_redis(server: str, data_dir: Path, tried: str) -> RedisChoice:
    workdir = data_dir / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    socket_dir = Path(tempfile.mkdtemp(prefix="gbdemo-"))  # short: unix socket paths max out near 100 bytes
    sock = socket_dir / "redis.sock"
    proc = subprocess.Popen(  # noqa: S603 - our own argv, no shell
        [server, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700", "--dir", str(workdir),
         "--dbfilename", "demo.rdb", "--save", "60 1", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, start_new_session=True)
    choice = RedisChoice(f"unix://{sock}", f"a private redis-server (data in {workdir}; nothing answers at {tried})",
                         proc, socket_dir)
    deadline = time.monotonic() + 10
    while not answers(choice.url):
        if proc.poll() is not None or time.monotonic() > deadline:
            choice.stop()
            return RedisChoice("memory://", f"memory:// (the private redis-server in {workdir} did not start)")
        time.sleep(0.05)
    return choice
