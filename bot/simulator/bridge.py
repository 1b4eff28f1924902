"""The simulator's server side: it plays the WeChat client and server, so the browser holds no secret.

A student's action becomes what WeChat would do: tell the stand-in the student interacted (that
opens the service window), upload a photo to the stand-in's media store, then post the signed (in
safe mode, encrypted) callback to gradbot over real HTTP and decode the passive reply. What arrives
later (customer-service and template messages) is read from the stand-in's inbox.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.config import Settings
from bot.sandbox.client import WeChatServer
from bot.wechat.api import WeChatAPI
from bot.wechat.errors import WeChatError
from storage.tokens import MemoryTokenCache

CALLBACK_TIMEOUT_S = 15.0  # gradbot answers within its reply budget (4.5 s); WeChat itself waits 5 s
STAND_IN_TIMEOUT_S = 5.0
# What the stand-in records for each kind of student action (docs/wechat-stub.md, the service window).
INTERACTION = {"text": "message", "image": "message", "subscribe": "subscribe", "unsubscribe": "unsubscribe"}


class BridgeError(Exception):
    """gradbot or the stand-in did not answer as expected; the message is for the simulator's user."""


@dataclass(frozen=True, slots=True)
class CallbackResult:
    status: int
    reply: dict[str, Any] | None  # the decoded passive reply; None for "success" or an empty body
    error: str = ""


class Bridge:
    def __init__(self, settings: Settings, http: aiohttp.ClientSession,
                 clock: Callable[[], float] = time.time) -> None:
        self.http = http
        self.stand_in = settings.wechat_api_base.rstrip("/")
        self.server = WeChatServer(token=settings.wechat_token, appid=settings.wechat_appid,
                                   aes_key=settings.wechat_aes_key, clock=clock)
        # Its own token cache: a stable_token in normal mode never revokes the one gradbot holds.
        self.api = WeChatAPI(http, settings, MemoryTokenCache())

    @property
    def safe_mode(self) -> bool:
        return bool(self.server.aes_key)

    async def interaction(self, openid: str, kind: str) -> None:
        await self._stand_in("POST", "interaction", json={"openid": openid, "kind": kind})

    async def upload_photo(self, data: bytes, content_type: str, filename: str) -> str:
        """What the phone does before an image message: the file goes to WeChat's media store."""
        body = await self._stand_in("POST", "media", data=io.BytesIO(data), params={"filename": filename},
                                    headers={"Content-Type": content_type})
        return str(body["media_id"])

    async def inbox(self, openid: str) -> list[dict[str, Any]]:
        items = await self._stand_in("GET", f"inbox/{openid}")
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    async def menu(self) -> dict[str, Any]:
        menu = await self._stand_in("GET", "menu")
        return menu if isinstance(menu, dict) else {}

    async def media(self, media_id: str) -> tuple[bytes, str]:
        try:
            media = await self.api.get_media(media_id)
        except WeChatError as exc:
            raise BridgeError(f"media {media_id}: {exc}") from None
        return media.data, media.content_type

    async def post_callback(self, url: str, openid: str, xml: str) -> CallbackResult:
        query, body = self.server.sign(xml, openid)
        timeout = aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_S)
        try:
            async with self.http.post(f"{url}?{query}", data=body, headers={"Content-Type": "text/xml"},
                                      timeout=timeout) as resp:
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BridgeError(f"gradbot did not answer the callback: {type(exc).__name__}") from None
        if resp.status != 200:
            return CallbackResult(resp.status, None, raw.decode("utf-8", "replace")[:200])
        try:
            return CallbackResult(200, self.server.decode(raw))
        except Exception as exc:  # a reply WeChat could not read is what the tester must see
            return CallbackResult(200, None, f"unreadable reply: {exc}")

    async def _stand_in(self, method: str, path: str, **kwargs: Any) -> Any:
        timeout = aiohttp.ClientTimeout(total=STAND_IN_TIMEOUT_S)
        try:
            async with self.http.request(method, f"{self.stand_in}/_stub/{path}", timeout=timeout,
                                         **kwargs) as resp:
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise BridgeError(f"the WeChat stand-in at {self.stand_in} did not answer: {type(exc).__name__}") from None
        if resp.status != 200:
            raise BridgeError(f"the WeChat stand-in refused {path}: {body}")
        return body
