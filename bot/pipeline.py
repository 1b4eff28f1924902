"""One message, after the callback has verified and parsed it.

dedup + wait for the student's turn (begin) → load the session → dispatch → render → save the session
and cache the reply (commit). No aiohttp here: the callback view owns the 5-second budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.metrics import Metrics
from bot.privacy import mask_openid
from bot.render import Renderer
from bot.wechat import replies
from bot.wechat.inbound import Inbound
from bot.wechat.replies import OutMessage
from dialogs.session import SessionRecord
from dialogs.spec import say
from handlers.base import Context, Outcome
from storage.base import LockLost, SessionStore, StoreUnavailable, Turn, in_flight

log = logging.getLogger("bot.pipeline")

Dispatch = Callable[[Inbound, Context], Awaitable[Outcome]]

# How long a message may queue behind the same student's earlier ones. Past the reply budget the
# callback has already answered "success"; the durable late-reply job delivers what we produce.
TURN_WAIT = 30.0


class FollowUps(Protocol):
    """Durable delivery of what cannot go in the passive reply (bot.jobs.JobQueue)."""

    async def enqueue_late_reply(self, openid: str, message_key: str) -> object: ...

    async def enqueue_cs(self, openid: str, messages: Sequence[OutMessage], idem_key: str) -> object: ...


@dataclass(frozen=True, slots=True)
class Result:
    messages: list[OutMessage]
    duplicate: bool = False


class Pipeline:
    def __init__(self, store: SessionStore, dispatch: Dispatch, renderer: Renderer, metrics: Metrics,
                 services: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.dispatch = dispatch
        self.renderer = renderer
        self.metrics = metrics
        self.services = services
        self.clock = clock

    async def process(self, inbound: Inbound, budget: float) -> Result:
        """Handle one message exactly once; a duplicate delivery gets the first one's reply."""
        try:
            begin = await self.store.begin(inbound.openid, inbound.dedup_key, TURN_WAIT)
        except LockLost:
            log.warning("turn not reached for %s", mask_openid(inbound.openid))
            return Result(self._busy())
        except StoreUnavailable as exc:
            log.error("state store unavailable: %s", exc)
            return Result(self._busy())
        if begin.turn is None:
            return await self._duplicate(inbound, begin.cached, budget)
        return await self._step(inbound, begin.turn)

    async def external(self, openid: str, event: str, key: str, data: str = "") -> Result:
        """Run an outside event through the student's turn exactly once per ``key``.

        The replies are for the caller to deliver (as customer-service or template messages).
        """
        inbound = Inbound.external(openid, event, key, self.clock(), data)
        return await self.process(inbound, budget=TURN_WAIT)

    async def _duplicate(self, inbound: Inbound, cached: bytes | None, budget: float) -> Result:
        self.metrics.duplicates.inc()
        if in_flight(cached):
            try:
                cached = await self.store.wait_reply(inbound.openid, inbound.dedup_key, budget)
            except StoreUnavailable:
                cached = None
        return Result(replies.loads(cached) if cached else [], duplicate=True)

    async def _step(self, inbound: Inbound, turn: Turn) -> Result:
        every = self.store.renew_every
        if every is None:
            return await self._run_step(inbound, turn)
        heartbeat = _Heartbeat(self.store, turn, every)
        try:
            return await self._run_step(inbound, turn)
        finally:
            heartbeat.stop()

    async def _run_step(self, inbound: Inbound, turn: Turn) -> Result:
        record = SessionRecord.loads(turn.record)
        try:
            outcome = await self.dispatch(inbound, Context(self.clock(), record, self.services))
            messages = self.renderer.messages(outcome.replies)
        except Exception:
            # A bug or a failed service must not leave the student stuck: release the turn, keep the
            # saved position, and say so kindly.
            log.exception("handler failed for %s (%s)", mask_openid(inbound.openid), inbound.label)
            messages = self._busy()
            await self._release(turn, messages)
            return Result(messages)
        record.v += 1
        record.last_seen = self.clock()
        try:
            await self.store.commit(turn, record.dumps(), replies.dumps(messages))
        except LockLost:
            log.error("turn lost before commit for %s; step not saved", mask_openid(inbound.openid))
        except StoreUnavailable as exc:
            log.error("session not saved for %s: %s", mask_openid(inbound.openid), exc)
        return Result(messages)

    async def _release(self, turn: Turn, messages: list[OutMessage]) -> None:
        try:
            await self.store.release(turn, replies.dumps(messages))
        except (LockLost, StoreUnavailable):
            log.error("turn lost while releasing for %s", mask_openid(turn.openid))

    def _busy(self) -> list[OutMessage]:
        self.metrics.busy.inc()
        return self.renderer.messages([say("common/busy")])


class _Heartbeat:
    """Renews a turn's lease while its step runs longer than a third of the lease (a photo step waiting
    on a slow WeChat API, a starved CPU): without it a waiter would skip the living holder, run the
    student's next message beside it, and the holder's step would not be saved. A timer, not a task,
    until the first renewal is due: nearly every step ends long before that."""

    def __init__(self, store: SessionStore, turn: Turn, every: float) -> None:
        self.store, self.turn, self.every = store, turn, every
        self.loop = asyncio.get_running_loop()
        self.task: asyncio.Task[None] | None = None
        self.stopped = False
        self.timer: asyncio.TimerHandle | None = self.loop.call_later(every, self._due)

    def _due(self) -> None:
        self.timer = None
        if not self.stopped:
            self.task = self.loop.create_task(self._renew())

    async def _renew(self) -> None:
        try:
            held = await self.store.renew(self.turn)
        except StoreUnavailable as exc:
            log.warning("lease not renewed for %s: %s", mask_openid(self.turn.openid), exc)
            held = True  # the store may be back by the next beat
        if held and not self.stopped:
            self.timer = self.loop.call_later(self.every, self._due)
        else:
            log.warning("turn already lost for %s while its step runs", mask_openid(self.turn.openid))

    def stop(self) -> None:
        self.stopped = True
        if self.timer is not None:
            self.timer.cancel()
        if self.task is not None:
            self.task.cancel()
