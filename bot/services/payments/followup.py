"""After a payment: advance the student's dialog (through their turn, like a message) and tell them.

Both steps are idempotent per order: ``Pipeline.external`` runs the event once per key, and the job
queue sends each message of ``paid:<out_trade_no>`` at most once. So the notification endpoint can
simply run this again on every delivery of the same notification, and a WeChat Pay retry re-drives
a follow-up that a crashed process never finished.
"""

from __future__ import annotations

import json

from bot.pipeline import FollowUps, Pipeline
from storage.sql.orders import Order

EVENT = "paid"


def event_data(order: Order) -> str:
    return json.dumps({"out_trade_no": order.out_trade_no, "procedure": order.procedure, "item": order.item,
                       "amount_fen": order.amount_fen}, separators=(",", ":"))


async def tell_student(pipeline: Pipeline, jobs: FollowUps, order: Order) -> None:
    result = await pipeline.external(order.openid, EVENT, order.out_trade_no, event_data(order))
    if result.messages:
        await jobs.enqueue_cs(order.openid, result.messages, f"paid:{order.out_trade_no}")
