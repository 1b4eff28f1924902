"""Jobs for the single-process ``memory://`` demo: the same deliveries, run as tracked tasks.

Not durable: a job dies with the process. Production uses :class:`bot.jobs.JobQueue` on Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aiohttp

from bot.config import Settings
from bot.jobs import LATE_DEADLINE_S
from bot.privacy import mask_openid
from bot.render import Renderer
from bot.tasks import TaskSet
from bot.wechat.api import WeChatAPI
from bot.wechat.errors import WeChatError
from bot.wechat.replies import OutMessage, loads
from storage.base import SessionStore
from storage.tokens import MemoryTokenCache

log = logging.getLogger("bot.jobs")
_REMEMBERED = 10_000


class LocalJobQueue:
    def __init__(self, settings: Settings, store: SessionStore, tasks: TaskSet,
                 renderer: Renderer | None = None) -> None:
        self.settings = settings
        self.store = store
        self.tasks = tasks
        self.renderer = renderer or Renderer()
        self.tokens = MemoryTokenCache()
        self._queued: set[str] = set()

    def _first(self, idem: str) -> bool:
        if idem in self._queued:
            return False
        if len(self._queued) >= _REMEMBERED:
            self._queued.clear()
        self._queued.add(idem)
        return True

    async def enqueue_late_reply(self, openid: str, message_key: str,
                                 deadline_s: float = LATE_DEADLINE_S) -> bool:
        if not self._first(f"late:{openid}:{message_key}"):
            return False
        self.tasks.spawn(self._late(openid, message_key, deadline_s))
        return True

    async def enqueue_cs(self, openid: str, messages: Sequence[OutMessage], idem_key: str) -> bool:
        if not messages or not self._first(f"cs:{openid}:{idem_key}"):
            return False
        self.tasks.spawn(self._send(openid, list(messages)))
        return True

    async def _late(self, openid: str, message_key: str, deadline_s: float) -> None:
        raw = await self.store.wait_reply(openid, message_key, deadline_s)
        sorry = [OutMessage.text(self.renderer.render("common/late_reply_failed"))]
        await self._send(openid, loads(raw) if raw is not None else sorry)

    async def _send(self, openid: str, messages: list[OutMessage]) -> None:
        async with aiohttp.ClientSession() as http:
            api = WeChatAPI(http, self.settings, self.tokens)
            for message in messages:
                try:
                    await api.send_message(message, openid)
                except WeChatError as exc:
                    log.warning("cs message for %s not sent: %s", mask_openid(openid), exc)
                    return
