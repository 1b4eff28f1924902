"""``POST /pay/notify``: WeChat Pay's payment notifications, verified before anything is believed.

Order of checks (reference/pay-notify-identity.md §1.3, §2.2): headers first (serial, signature type,
probe, ±5-minute timestamp) so the SDK never blocks on an unknown serial; then the SDK verifies the
raw body bytes and decrypts; then appid, mchid, our order and the amount. Applying is idempotent.
Failures answer 4xx/5xx with ``{"code": "FAIL", "message": …}`` so WeChat Pay retries; the database
being unavailable is a 500, never a 204: a payment must not be lost. After a payment the student's
dialog is advanced and they are told; if that does not finish within the budget the answer is a 500
too, and WeChat Pay's retry re-drives it (each step runs once per order).
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from bot import keys
from bot.services.payments.errors import NotificationRejected
from bot.services.payments.followup import tell_student
from bot.services.payments.notify import MAX_BODY, precheck, transaction_of
from bot.services.payments.service import Applied, Payments

log = logging.getLogger("bot.web.pay")
DB_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, asyncio.TimeoutError)
FOLLOW_UP_BUDGET = 3.0  # seconds; WeChat Pay wants an answer within 5


def _fail(status: int, reason: str) -> web.Response:
    return web.json_response({"code": "FAIL", "message": reason}, status=status)


async def notify(request: web.Request) -> web.Response:
    started = time.monotonic()
    payments: Payments | None = request.app.get(keys.PAYMENTS)
    if payments is None:
        return _fail(503, "payments_off")
    body = await request.read()
    if len(body) > MAX_BODY:
        return _fail(413, "too_large")
    try:
        applied = await _verified_and_applied(payments, request, body)
    except NotificationRejected as exc:
        payments.metrics.payments.labels(outcome="rejected_" + exc.code).inc()
        log.warning("payment notification rejected: %s", exc.code)
        return _fail(exc.status, exc.code)
    except DB_ERRORS as exc:
        payments.metrics.payments.labels(outcome="db_unavailable").inc()
        log.error("payment notification not applied, database unavailable: %s", type(exc).__name__)
        return _fail(500, "db_unavailable")
    if applied is not None and applied.order.state == "paid":
        budget = FOLLOW_UP_BUDGET - (time.monotonic() - started)
        if not await _follow_up(request.app, applied, budget):
            return _fail(500, "follow_up_pending")
    return web.Response(status=204)


async def _verified_and_applied(payments: Payments, request: web.Request, body: bytes) -> Applied | None:
    config = payments.config
    precheck(request.headers, config.public_key_id, time.time())
    envelope = payments.client.decrypt_notification(request.headers, body)
    if envelope is None:
        raise NotificationRejected("bad_signature")
    event = str(envelope.get("event_type", ""))
    if event != "TRANSACTION.SUCCESS":
        # Refund results are recorded when staff refund (the API answer); other events need nothing.
        log.info("payment notification %s acknowledged", event or "without event_type")
        return None
    return await payments.apply(transaction_of(envelope, config.appid, config.mchid), source="notify")


async def _follow_up(app: web.Application, applied: Applied, budget: float) -> bool:
    task = app[keys.TASKS].spawn(tell_student(app[keys.PIPELINE], app[keys.JOBS], applied.order))
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=max(budget, 0.1))
    except TimeoutError:
        log.warning("follow-up of %s still running; asking WeChat Pay to retry", applied.order.out_trade_no)
        return False
    except Exception:  # logged by the task set; the retry will try again
        return False
    return True
