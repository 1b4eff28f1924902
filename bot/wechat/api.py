"""Async client for the WeChat official-account API (the endpoints gradbot uses).

Why not wechatpy's client: it is synchronous, keeps token expiry per process and re-fetches the
token without bound on 40001 (docs: reference/wechat.md §3). Here the ``ClientSession`` and the
token cache are injected, the base URL comes from settings (the stand-in in tests and the demo),
calls have timeouts, failures WeChat calls transient (-1, 5xx, timeouts) are retried a bounded
number of times with backoff, and a rejected token is refreshed and the call retried exactly once.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from redis.exceptions import RedisError

from bot.config import Settings
from bot.metrics import Metrics
from bot.wechat.errors import AccessTokenInvalid, WeChatError, WeChatTransportError, api_error
from bot.wechat.replies import OutMessage
from storage.tokens import CachedToken, TokenCache, TokenUnavailable

T = TypeVar("T")
log = logging.getLogger("bot.wechat")
_FILENAME = re.compile(r'filename="?([^";]+)"?')
_JSONISH = ("application/json", "text/plain", "text/html", "text/javascript")


@dataclass(frozen=True, slots=True)
class Media:
    data: bytes
    content_type: str
    filename: str = ""


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    form: Callable[[], aiohttp.FormData] | None = None  # rebuilt per attempt: a FormData is single-use
    auth: bool = True
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class _Raw:
    status: int
    content_type: str
    body: bytes
    disposition: str


def _json_body(payload: Mapping[str, Any]) -> bytes:
    # WeChat rejects \uXXXX escapes in some endpoints (menu/create answers 40033), so send UTF-8.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class WeChatAPI:
    def __init__(self, http: aiohttp.ClientSession, settings: Settings, tokens: TokenCache,
                 metrics: Metrics | None = None, clock: Callable[[], float] = time.time, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, timeout: float = 5.0,
                 media_timeout: float = 30.0, attempts: int = 3, backoff: float = 0.2,
                 max_backoff: float = 2.0) -> None:
        self.http = http
        self.settings = settings
        self.tokens = tokens
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.timeout = timeout
        self.media_timeout = media_timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.base = settings.wechat_api_base.rstrip("/") + "/cgi-bin/"

    # -- endpoints -------------------------------------------------------------------------

    async def fetch_token(self) -> tuple[str, int]:
        """``POST /cgi-bin/stable_token`` (normal mode: does not invalidate other holders' token)."""
        body = {"grant_type": "client_credential", "appid": self.settings.wechat_appid,
                "secret": self.settings.wechat_secret, "force_refresh": False}
        data = await self._json("POST", "stable_token", body=body, auth=False)
        return str(data["access_token"]), int(data["expires_in"])

    async def send_message(self, message: OutMessage, openid: str) -> None:
        await self._json("POST", "message/custom/send", body=message.to_cs_payload(openid))

    async def send_text(self, openid: str, content: str) -> None:
        await self.send_message(OutMessage.text(content), openid)

    async def send_image(self, openid: str, media_id: str) -> None:
        await self.send_message(OutMessage.image(media_id), openid)

    async def send_news(self, openid: str, title: str, description: str, url: str,
                        picurl: str = "") -> None:
        await self.send_message(OutMessage.news(title, description, url, picurl), openid)

    async def typing(self, openid: str, on: bool) -> None:
        body = {"touser": openid, "command": "Typing" if on else "CancelTyping"}
        await self._json("POST", "message/custom/typing", body=body)

    async def get_media(self, media_id: str) -> Media:
        """Download temporary media; an error comes back as JSON, never as "image" bytes."""
        request = _Request("GET", "media/get", {"media_id": media_id}, timeout=self.media_timeout)
        return await self._call(request, self._parse_media)

    async def upload_media(self, kind: str, data: bytes, filename: str,
                           content_type: str | None = None) -> str:
        """Upload temporary media (``kind``: image, voice, video, thumb); returns the media_id."""
        ctype = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"

        def form() -> aiohttp.FormData:
            payload = aiohttp.FormData()
            # A BytesIO, not bytes: aiohttp warns that large raw bytes bodies can block the loop.
            payload.add_field("media", io.BytesIO(data), filename=filename, content_type=ctype)
            return payload

        request = _Request("POST", "media/upload", {"type": kind}, form=form, timeout=self.media_timeout)
        return str((await self._call(request, self._parse_json))["media_id"])

    async def send_template(self, openid: str, template_id: str, data: Mapping[str, Any],
                            url: str | None = None, client_msg_id: str | None = None) -> int:
        """Template message; plain values are wrapped as ``{"value": ...}``. Returns WeChat's msgid."""
        fields = {k: v if isinstance(v, Mapping) else {"value": str(v)} for k, v in data.items()}
        body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": fields}
        if url:
            body["url"] = url
        if client_msg_id:
            body["client_msg_id"] = client_msg_id
        return int((await self._json("POST", "message/template/send", body=body))["msgid"])

    async def user_info(self, openid: str, lang: str = "zh_CN") -> dict[str, Any]:
        return await self._json("GET", "user/info", params={"openid": openid, "lang": lang})

    async def create_menu(self, menu: Mapping[str, Any]) -> None:
        await self._json("POST", "menu/create", body=menu)

    # -- machinery -------------------------------------------------------------------------

    async def _json(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                    body: Mapping[str, Any] | None = None, auth: bool = True) -> dict[str, Any]:
        request = _Request(method, path, params or {}, None if body is None else _json_body(body),
                           auth=auth)
        return await self._call(request, self._parse_json)

    async def _call(self, request: _Request, parse: Callable[[_Raw], T]) -> T:
        refreshed = False
        failures = 0
        while True:
            token = await self._token() if request.auth else None
            try:
                return parse(await self._once(request, token))
            except AccessTokenInvalid:
                if token is None or refreshed:
                    raise
                refreshed = True  # exactly one refresh-and-retry per call
                await self._invalidate(token)
            except WeChatError as exc:
                failures += 1
                if not exc.retryable or failures >= self.attempts:
                    raise
                await self.sleep(min(self.backoff * 2 ** (failures - 1), self.max_backoff))

    async def _token(self) -> CachedToken:
        try:
            return await self.tokens.get(self.fetch_token)
        except (RedisError, TokenUnavailable) as exc:
            raise WeChatTransportError(f"token cache: {exc}") from exc

    async def _invalidate(self, token: CachedToken) -> None:
        try:
            await self.tokens.invalidate(token)
        except RedisError as exc:
            raise WeChatTransportError(f"token cache: {exc}") from exc

    async def _once(self, request: _Request, token: CachedToken | None) -> _Raw:
        params = dict(request.params)
        if token is not None:
            params["access_token"] = token.value
        headers = {"Content-Type": "application/json; charset=utf-8"} if request.body is not None else None
        data: Any = request.form() if request.form is not None else request.body
        timeout = aiohttp.ClientTimeout(total=request.timeout or self.timeout)
        started = self.clock()
        try:
            async with self.http.request(request.method, self.base + request.path, params=params,
                                         data=data, headers=headers, timeout=timeout) as resp:
                raw = _Raw(resp.status, resp.content_type, await resp.read(),
                           resp.headers.get("Content-Disposition", ""))
        except TimeoutError:
            raise self._transport(request, "timeout", started) from None
        except aiohttp.ClientError as exc:
            raise self._transport(request, type(exc).__name__, started) from exc
        if raw.status != 200:
            raise self._transport(request, "http", started, raw.status)
        return raw

    def _transport(self, request: _Request, reason: str, started: float,
                   status: int | None = None) -> WeChatTransportError:
        label = f"http_{status}" if status else reason
        self._count(label)
        log.warning("wechat %s %s failed: %s after %.0f ms", request.method, request.path, label,
                    (self.clock() - started) * 1000)
        return WeChatTransportError(reason, status=status, retryable=status is None or status >= 500
                                    or status == 429)

    def _parse_json(self, raw: _Raw) -> dict[str, Any]:
        try:
            data = json.loads(raw.body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise WeChatTransportError(f"not a JSON object ({raw.content_type})", retryable=False)
        return self._check(data)

    def _parse_media(self, raw: _Raw) -> Media:
        if raw.content_type in _JSONISH:
            # JSON here is an error, or a video's {"video_url": ...}: either way not media bytes.
            data = self._parse_json(raw)
            return Media(json.dumps(data).encode(), "application/json")
        match = _FILENAME.search(raw.disposition)
        return Media(raw.body, raw.content_type, match.group(1) if match else "")

    def _check(self, data: dict[str, Any]) -> dict[str, Any]:
        """The one place an ``errcode`` becomes an exception (mapped in bot.wechat.errors)."""
        errcode = int(data.get("errcode") or 0)
        if errcode == 0:
            return data
        error = api_error(errcode, str(data.get("errmsg", "")))
        self._count(str(errcode))
        log.warning("wechat errcode %s rid %s: %s", errcode, error.rid or "-", error.errmsg)
        raise error

    def _count(self, label: str) -> None:
        if self.metrics is not None:
            self.metrics.api_errors.labels(errcode=label).inc()
