"""One frozen Settings object, built once from GRADBOT_* environment variables and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

WECHAT_API_DEFAULT = "https://api.weixin.qq.com"
PAY_API_DEFAULT = "https://api.mch.weixin.qq.com"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Every Redis key starts with this; tests use a prefix per run so runs never collide.
    redis_prefix: str = "gb"
    database_url: str = ""
    data_dir: Path = Path("var")
    data_key: str = field(default="", repr=False)
    data_key_previous: str = field(default="", repr=False)
    public_url: str = "http://127.0.0.1:8080"
    wechat_appid: str = "wx0000000000demo"
    wechat_secret: str = field(default="demo-secret", repr=False)
    wechat_token: str = field(default="gradbot", repr=False)
    wechat_aes_key: str = field(default="", repr=False)
    wechat_aes_key_previous: str = field(default="", repr=False)
    wechat_api_base: str = WECHAT_API_DEFAULT
    # Seconds a callback may take before we answer "success" and deliver by customer-service message.
    reply_budget: float = 4.5
    # Accepted clock skew of the callback's timestamp, seconds.
    timestamp_window: int = 600
    max_body_bytes: int = 64 * 1024
    dedup_ttl: int = 600
    session_ttl: int = 14 * 24 * 3600
    lock_lease_ms: int = 10_000
    workers: int = 1
    # Extra procedure files (*.toml) a school adds without code changes (docs/procedures.md).
    procedures_dir: str = ""
    # Processes checking photos per web process; 0 checks in threads (tests, CLI); serve uses 1 when unset.
    photo_workers: int = 0
    log_json: bool = False
    # Privacy (docs/privacy.md): photo files are deleted this many days after their procedure finished,
    # by a run at this hour (China time) in `gradbot worker`; -1 turns the nightly run off.
    retention_days: int = 30
    retention_hour: int = 3
    # The chat simulator at /simulator/ (docs/demo.md): a development tool, on only with the WeChat stand-in.
    simulator: bool = False
    # WeChat Pay API v3 (docs/payments.md). Payments are off while pay_mchid is empty.
    pay_mchid: str = ""
    pay_appid: str = ""  # empty: wechat_appid (the official account the students pay in)
    pay_api_base: str = PAY_API_DEFAULT
    pay_private_key_path: str = ""
    pay_serial_no: str = ""
    pay_public_key_path: str = ""
    pay_public_key_id: str = ""
    pay_apiv3_key: str = field(default="", repr=False)
    pay_notify_url: str = ""  # empty: public_url + "/pay/notify"
    pay_link_secret: str = field(default="", repr=False)
    # Staff console, template notifications and broadcasts (docs/console.md).
    console_cookie_secure: bool = True  # False only for plain-http local use (tests, demo)
    console_session_ttl: int = 8 * 3600
    notify_templates: str = ""  # TOML: template ids and field mapping; empty: bot/services/notify/templates.toml
    notify_use_cs: bool = False  # also send review results by customer-service message within 48 h
    broadcast_rate: int = 20  # messages per second for a broadcast that names no rate
    broadcast_daily_limit: int = 90_000  # broadcast template sends per day (WeChat's quota: 100 000)
    broadcast_senders: int = 2  # sender jobs per broadcast, sharing its rate
    # A dead sender's claimed batch is retried after this; far below WeChat's 10-minute client_msg_id window.
    broadcast_lease_s: float = 30.0

    @property
    def safe_mode(self) -> bool:
        return bool(self.wechat_aes_key)

    @property
    def aes_keys(self) -> tuple[str, ...]:
        return tuple(k for k in (self.wechat_aes_key, self.wechat_aes_key_previous) if k)

    @property
    def sql_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'gradbot.sqlite3'}"

    @property
    def memory_state(self) -> bool:
        return self.redis_url.startswith("memory://")

    def validate(self) -> Settings:
        for key in self.aes_keys:
            if len(key) != 43 or not key.isalnum():
                raise SettingsError("GRADBOT_WECHAT_AES_KEY(_PREVIOUS) must be 43 letters or digits")
        if self.memory_state and self.workers > 1:
            raise SettingsError(
                "GRADBOT_REDIS_URL=memory:// keeps state in one process; use redis:// for --workers > 1"
            )
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://", "memory://")):
            raise SettingsError("GRADBOT_REDIS_URL must be redis://, rediss://, unix:// or memory://")
        return self

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes).validate()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("GRADBOT_" + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _coerce(f.name, f.default, raw)
        return cls(**values).validate()


def _coerce(name: str, default: object, raw: str) -> object:
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw)
    except ValueError as exc:
        raise SettingsError(f"GRADBOT_{name.upper()}: cannot read {raw!r}") from exc
    return raw
