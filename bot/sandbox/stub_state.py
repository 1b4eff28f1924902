"""State and rules of the WeChat API stand-in: tokens, media, service windows, templates, faults.

Pure Python (no aiohttp) so every rule reads as a few lines: each breach raises :class:`StubError`
with the errcode and errmsg the real API uses (reference/wechat.md §2). The clock is injectable and
can be advanced, so expiry, the 48-hour window and the daily quota really happen in tests.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

DAY = 86400.0
OPENID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40004: "invalid media type",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40010: "invalid voice size",
    40011: "invalid video size",
    40012: "invalid thumb size",
    40013: "invalid appid",
    40014: "invalid access_token",
    40033: "invalid charset. please check your request, if include \\uxxxx will create fail!",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41005: "media data missing",
    42001: "access_token expired",
    43004: "require subscribe",
    44002: "empty post data",
    44004: "empty content",
    45008: "article size out of limit",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    45080: "no interaction with the user in the last 30 seconds",  # wording ours: not documented
    45081: "already typing",  # wording ours: not documented
    47001: "data format error",
    47003: "argument invalid!",
}

MEDIA_LIMITS = {"image": (2 << 20, 40009), "voice": (2 << 20, 40010), "video": (10 << 20, 40011),
                "thumb": (64 << 10, 40012)}

# Template field types and the longest value each accepts (community-documented rules, §2.4).
FIELD_LIMITS = {"thing": 20, "character_string": 32, "phrase": 5, "name": 20, "number": 32, "amount": 32,
                "time": 32, "date": 32, "phone_number": 17, "letter": 32, "symbol": 5}
_ASCII_ONLY = frozenset({"character_string", "number", "letter", "phone_number"})


class StubError(Exception):
    def __init__(self, errcode: int, errmsg: str | None = None) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg or ERRMSG.get(errcode, "stub error")


@dataclass
class StubConfig:
    appid: str = "wx0000000000demo"
    secret: str = "demo-secret"  # noqa: S105 - the stand-in's own demo credential
    token_ttl: int = 7200
    # template_id -> {field name: field type}, e.g. {"TPL_REVIEW": {"thing1": "thing", "time2": "time"}}
    templates: dict[str, dict[str, str]] = field(default_factory=dict)
    daily_template_quota: int = 100_000
    cs_message_window: float = 48 * 3600
    cs_per_message: int = 5
    cs_event_window: float = 60
    cs_per_event: int = 3
    typing_window: float = 30
    typing_duration: float = 15
    media_ttl: float = 3 * DAY
    template_dedup_window: float = 600
    clock: Callable[[], float] = time.time


@dataclass
class Grant:
    """Customer-service messages one student interaction allows: ``limit`` within ``valid_for`` s."""

    opened: float
    valid_for: float
    limit: int
    used: int = 0

    def open_at(self, now: float) -> bool:
        return now - self.opened <= self.valid_for


@dataclass
class User:
    followed: bool = False
    subscribe_time: int = 0
    grants: dict[str, Grant] = field(default_factory=dict)
    last_interaction: float = float("-inf")
    typing_until: float = float("-inf")


@dataclass
class StoredMedia:
    kind: str
    data: bytes
    content_type: str
    filename: str
    created_at: float


@dataclass
class Fault:
    errcode: int | None = None
    status: int | None = None
    latency_ms: int = 0
    remaining: int = 1  # <= 0: until reset
    paths: tuple[str, ...] = ()

    def matches(self, path: str) -> bool:
        return not self.paths or path in self.paths


def normalize_path(path: str) -> str:
    return path.removeprefix("/").removeprefix("cgi-bin/")


class StubState:
    def __init__(self, config: StubConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self.offset = 0.0
        self.tokens: dict[str, float] = {}  # token -> expires_at
        self.stable: str | None = None
        self.media: dict[str, StoredMedia] = {}
        self.users: dict[str, User] = {}
        self.inbox: dict[str, list[dict[str, Any]]] = {}
        self.calls: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self.menu: dict[str, Any] | None = None
        self.sent_templates: dict[tuple[str, str], tuple[int, float]] = {}
        self.quota_day = -1
        self.quota_used = 0
        self._msgids = itertools.count(2_000_000_001)

    def now(self) -> float:
        return self.config.clock() + self.offset

    def rid(self) -> str:
        return f"{int(self.now()):08x}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"

    # -- tokens --------------------------------------------------------------------------------

    def check_credentials(self, grant_type: Any, appid: Any, secret: Any) -> None:
        if grant_type != "client_credential":
            raise StubError(40002)
        if appid != self.config.appid:
            raise StubError(40013)
        if secret != self.config.secret:
            raise StubError(40125)

    def _mint(self) -> str:
        token = "STUB_" + secrets.token_urlsafe(96)
        self.tokens[token] = self.now() + self.config.token_ttl
        return token

    def stable_token(self, force_refresh: bool) -> tuple[str, int]:
        """Normal mode hands out the current token until it nears expiry; force mode revokes it."""
        margin = min(300.0, self.config.token_ttl / 2)
        current = self.stable or ""
        remaining = self.tokens.get(current, 0.0) - self.now()
        if force_refresh:
            self.tokens.pop(current, None)
        if force_refresh or remaining <= margin:
            current = self.stable = self._mint()
            remaining = self.config.token_ttl
        return current, int(remaining)

    def classic_token(self) -> tuple[str, int]:
        """Each fetch replaces the last; the old one keeps working for 5 more minutes."""
        for token, expires_at in self.tokens.items():
            if token != self.stable:
                self.tokens[token] = min(expires_at, self.now() + 300)
        return self._mint(), self.config.token_ttl

    def check_token(self, token: str | None) -> None:
        if not token:
            raise StubError(41001)
        expires_at = self.tokens.get(token)
        if expires_at is None:
            raise StubError(40001)
        if expires_at <= self.now():
            raise StubError(42001)

    def expire_tokens(self) -> None:
        self.tokens = dict.fromkeys(self.tokens, self.now())

    # -- students ------------------------------------------------------------------------------

    @staticmethod
    def openid(value: Any) -> str:
        if not isinstance(value, str) or not OPENID.match(value):
            raise StubError(40003)
        return value

    def user(self, openid: Any) -> User:
        return self.users.setdefault(self.openid(openid), User())

    def interaction(self, openid: str, kind: str) -> None:
        user, now, cfg = self.user(openid), self.now(), self.config
        if kind == "unsubscribe":
            user.followed, user.grants = False, {}
            return
        if kind == "subscribe" or not user.followed:
            user.subscribe_time = int(now)
        user.followed = True
        user.last_interaction = now
        if kind == "message":
            user.grants["message"] = Grant(now, cfg.cs_message_window, cfg.cs_per_message)
        else:  # click, scan, subscribe: a short allowance
            user.grants["event"] = Grant(now, cfg.cs_event_window, cfg.cs_per_event)

    def consume_cs(self, openid: str) -> None:
        user, now = self.user(openid), self.now()
        active = [g for g in user.grants.values() if g.open_at(now)] if user.followed else []
        if not active:
            raise StubError(45015)
        free = [g for g in sorted(active, key=lambda g: g.opened + g.valid_for) if g.used < g.limit]
        if not free:
            raise StubError(45047)
        free[0].used += 1
        user.typing_until = float("-inf")  # sending a message cancels the typing indicator

    def typing(self, openid: str, on: bool) -> None:
        user, now = self.user(openid), self.now()
        if not on:
            user.typing_until = float("-inf")
            return
        if now - user.last_interaction > self.config.typing_window:
            raise StubError(45080)
        if user.typing_until > now:
            raise StubError(45081)
        user.typing_until = now + self.config.typing_duration

    def deliver(self, openid: str, kind: str, payload: Mapping[str, Any], channel: str,
                **extra: Any) -> None:
        entry = {"type": kind, "payload": dict(payload), "timestamp": self.now(), "channel": channel, **extra}
        self.inbox.setdefault(openid, []).append(entry)

    # -- media ---------------------------------------------------------------------------------

    def put_media(self, kind: str, data: bytes, content_type: str, filename: str) -> tuple[str, int]:
        if kind not in MEDIA_LIMITS:
            raise StubError(40004)
        limit, errcode = MEDIA_LIMITS[kind]
        if not data:
            raise StubError(41005)
        if len(data) > limit:
            raise StubError(errcode)
        media_id = secrets.token_urlsafe(48)
        self.media[media_id] = StoredMedia(kind, data, content_type, filename, self.now())
        return media_id, int(self.now())

    def get_media(self, media_id: str | None) -> StoredMedia:
        stored = self.media.get(media_id or "")
        if stored is None or self.now() - stored.created_at > self.config.media_ttl:
            raise StubError(40007)
        return stored

    # -- templates -----------------------------------------------------------------------------

    def template_fields(self, template_id: Any) -> dict[str, str]:
        fields = self.config.templates.get(template_id) if isinstance(template_id, str) else None
        if fields is None:
            raise StubError(40037)
        return fields

    def check_fields(self, fields: Mapping[str, str], data: Any) -> None:
        for name, kind in fields.items():
            item = data.get(name) if isinstance(data, Mapping) else None
            value = item.get("value") if isinstance(item, Mapping) else None
            if not _field_ok(kind, value):
                raise StubError(47003, f"argument invalid! data.{name}.value invalid")

    def template_msgid(self, openid: str, client_msg_id: str | None) -> tuple[int, bool]:
        """(msgid, is_new): a repeated client_msg_id within the window returns the first msgid."""
        key = (openid, client_msg_id or "")
        seen = self.sent_templates.get(key)
        if client_msg_id and seen and self.now() - seen[1] <= self.config.template_dedup_window:
            return seen[0], False
        self._spend_quota()
        msgid = next(self._msgids)
        if client_msg_id:
            self.sent_templates[key] = (msgid, self.now())
        return msgid, True

    def _spend_quota(self) -> None:
        day = int(self.now() // DAY)
        if day != self.quota_day:
            self.quota_day, self.quota_used = day, 0
        if self.quota_used >= self.config.daily_template_quota:
            raise StubError(45009)
        self.quota_used += 1

    # -- faults --------------------------------------------------------------------------------

    def take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(path):
                if fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                return fault
        return None


def _field_ok(kind: str, value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    if kind in _ASCII_ONLY and not value.isascii():
        return False
    return len(value) <= FIELD_LIMITS.get(kind, 200)
