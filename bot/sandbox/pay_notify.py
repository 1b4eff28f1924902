"""The pay sandbox's notification dispatcher: signed, encrypted callbacks with WeChat's retry schedule.

A delivery counts as received only when the merchant answers 200 or 204 within 5 s; otherwise it
is retried after 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h (multiplied by
``time_scale`` so tests and demos need not wait a day). Switches inject what real WeChat Pay also
produces: duplicate deliveries (some at the same moment), held-back notifications released out of
order, ``WECHATPAY/SIGNTEST/`` probes, and forgeries (bad signature, tampered body, stale timestamp,
unknown serial, wrong amount) for the merchant's endpoint to reject.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.sandbox import pay_sign
from bot.sandbox.pay_keys import SandboxKeys
from bot.sandbox.pay_state import rfc3339

RETRY_SCHEDULE = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
ANSWER_WITHIN = 5.0
FORGERIES = ("bad_signature", "tampered", "stale", "unknown_serial", "wrong_amount", "probe", "no_signature_type")


@dataclass(frozen=True)
class Notification:
    url: str
    body: bytes
    headers: dict[str, str]
    event_type: str
    out_trade_no: str
    kind: str = "normal"  # normal | duplicate | a FORGERIES name | replay


@dataclass
class Attempt:
    id: str
    out_trade_no: str
    event_type: str
    kind: str
    number: int
    status: int  # 0: no answer (timeout, refused)
    wall: float


@dataclass
class Switches:
    duplicates: int = 0  # extra copies of each notification, sent concurrently with it
    hold: bool = False  # keep notifications back until released (then in the order asked for)
    extra: dict[str, Any] = field(default_factory=dict)


class Dispatcher:
    def __init__(self, keys: SandboxKeys, time_scale: float = 1.0, wall: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self.platform_key = pay_sign.load_private(keys.platform_private_path.read_bytes())
        self.time_scale = time_scale
        self.wall = wall
        self.switches = Switches()
        self.held: list[Notification] = []
        self.attempts: list[Attempt] = []
        self.delivered: list[Notification] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    # -- building ------------------------------------------------------------------------------

    def build(self, url: str, event_type: str, original_type: str, resource: dict[str, Any],
              summary: str, kind: str = "normal", *, wall_offset: float = 0.0) -> Notification:
        sealed = pay_sign.encrypt_resource(self.keys.apiv3_key, json.dumps(resource, ensure_ascii=False),
                                           original_type)
        envelope = {"id": str(uuid.uuid4()), "create_time": rfc3339(self.wall() + wall_offset),
                    "resource_type": "encrypt-resource", "event_type": event_type, "summary": summary,
                    "resource": {**sealed, "original_type": original_type}}
        body = json.dumps(envelope, ensure_ascii=False).encode("utf-8")
        return Notification(url, body, self.signed_headers(body, wall_offset), event_type,
                            str(resource.get("out_trade_no", "")), kind)

    def signed_headers(self, body: bytes, wall_offset: float = 0.0) -> dict[str, str]:
        timestamp, nonce_str = str(int(self.wall() + wall_offset)), pay_sign.nonce()
        message = pay_sign.response_message(timestamp, nonce_str, body.decode("utf-8"))
        return {"Content-Type": "application/json", "Wechatpay-Timestamp": timestamp,
                "Wechatpay-Nonce": nonce_str, "Wechatpay-Serial": self.keys.public_key_id,
                "Wechatpay-Signature": pay_sign.sign(self.platform_key, message),
                "Wechatpay-Signature-Type": pay_sign.SCHEMA}

    # -- sending -------------------------------------------------------------------------------

    def submit(self, notification: Notification) -> None:
        """Queue a notification for delivery with retries (and any duplicates the switches ask for)."""
        if self.switches.hold:
            self.held.append(notification)
            return
        self._spawn(self._deliver_with_retries(notification))
        for _ in range(self.switches.duplicates):
            copy = Notification(notification.url, notification.body, notification.headers,
                                notification.event_type, notification.out_trade_no, "duplicate")
            self._spawn(self._deliver_with_retries(copy))

    def release(self, order: str = "reverse") -> int:
        held, self.held = self.held, []
        self.switches.hold = False
        for notification in reversed(held) if order == "reverse" else held:
            self.submit(notification)
        return len(held)

    async def send_once(self, notification: Notification) -> int:
        """One delivery attempt; the merchant's HTTP status, or 0 when it did not answer in time."""
        assert self._http is not None, "dispatcher not started"
        timeout = aiohttp.ClientTimeout(total=ANSWER_WITHIN)
        try:
            async with self._http.post(notification.url, data=notification.body, headers=notification.headers,
                                       timeout=timeout) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        number = 1 + sum(1 for a in self.attempts if a.id == _id(notification))
        self.attempts.append(Attempt(_id(notification), notification.out_trade_no, notification.event_type,
                                     notification.kind, number, status, self.wall()))
        return status

    async def _deliver_with_retries(self, notification: Notification) -> None:
        for delay in (0, *RETRY_SCHEDULE):
            if delay:
                await asyncio.sleep(delay * self.time_scale)
            if await self.send_once(notification) in (200, 204):
                self.delivered.append(notification)
                return

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until no delivery is in progress or waiting for a retry."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- forgeries -----------------------------------------------------------------------------

    def forge(self, kind: str, genuine: Notification, wrong_amount: dict[str, Any] | None = None) -> Notification:
        """A notification the merchant must reject, derived from a genuine one."""
        if kind == "wrong_amount" and wrong_amount is not None:
            return self.build(genuine.url, genuine.event_type, "transaction", wrong_amount, "支付成功", kind)
        headers, body = dict(genuine.headers), genuine.body
        if kind == "bad_signature":
            headers["Wechatpay-Signature"] = pay_sign.sign(self.platform_key, "something else\n")
        elif kind == "tampered":
            body = body.replace(b'"summary": "', b'"summary": "X', 1)
        elif kind == "stale":
            headers = self.signed_headers(body, wall_offset=-600)  # correctly signed, 10 minutes old
        elif kind == "unknown_serial":
            headers["Wechatpay-Serial"] = "PUB_KEY_ID_" + "9" * 28
        elif kind == "probe":
            headers["Wechatpay-Signature"] = pay_sign.PROBE_PREFIX + headers["Wechatpay-Signature"][19:]
        elif kind == "no_signature_type":
            headers.pop("Wechatpay-Signature-Type")
        return Notification(genuine.url, body, headers, genuine.event_type, genuine.out_trade_no, kind)


def _id(notification: Notification) -> str:
    return str(json.loads(notification.body).get("id", ""))
