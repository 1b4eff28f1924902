"""``gradbot orders show OUT_TRADE_NO [--json]``; ``gradbot orders refund OUT_TRADE_NO [--amount FEN] --reason TEXT``.

The JSON of ``show`` is a contract::

    {"out_trade_no", "openid", "item", "amount_fen", "state", "paid_at", "transaction_id"}

A refund uses one refund number per order (``RF`` + the order number), so running the command
again after a timeout or a crash can never refund twice: WeChat Pay answers the same refund.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from bot.config import Settings, SettingsError
from bot.metrics import Metrics
from bot.records import open_database
from bot.services.payments.client import PayClient
from bot.services.payments.config import PayConfig, link_secret
from bot.services.payments.errors import PaymentError
from bot.services.payments.fees import load_fees
from bot.services.payments.links import Sealer
from bot.services.payments.refunds import refund
from bot.services.payments.service import Payments
from storage.sql import migrate
from storage.sql import orders as repo

PROG = "gradbot orders"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("orders", help="look up and refund payment orders")
    sub = p.add_subparsers(dest="orders_command", required=True)
    show = sub.add_parser("show", help="show one order")
    show.add_argument("out_trade_no")
    show.add_argument("--json", action="store_true", help="print the contract JSON")
    show.set_defaults(func=run_show)
    refund = sub.add_parser("refund", help="refund a paid order (once, however often it is run)")
    refund.add_argument("out_trade_no")
    refund.add_argument("--amount", type=int, help="fen to refund (default: the whole order)")
    refund.add_argument("--reason", required=True, help="shown to the payer by WeChat Pay")
    refund.set_defaults(func=run_refund)


def _settings() -> Settings | None:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return None


def order_summary(order: repo.Order) -> dict[str, Any]:
    return {"out_trade_no": order.out_trade_no, "openid": order.openid, "item": order.item,
            "amount_fen": order.amount_fen, "state": order.state,
            "paid_at": order.paid_at.isoformat() if order.paid_at else None, "transaction_id": order.transaction_id}


def run_show(args: argparse.Namespace) -> int:
    settings = _settings()
    return 2 if settings is None else asyncio.run(_show(settings, args.out_trade_no, args.json))


async def _show(settings: Settings, out_trade_no: str, as_json: bool) -> int:
    async with open_database(settings) as db:
        if await migrate.current(db) is None:
            print(f"{PROG}: the database has no schema yet; run `gradbot db upgrade`", file=sys.stderr)
            return 2
        async with db.read() as conn:
            order = await repo.get(conn, out_trade_no)
    if order is None:
        print(f"{PROG}: no order {out_trade_no!r}", file=sys.stderr)
        return 1
    summary = order_summary(order)
    print(json.dumps(summary, ensure_ascii=False, indent=2) if as_json else
          "\n".join(f"{k}: {'' if v is None else v}" for k, v in summary.items()))
    return 0


def run_refund(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings is None:
        return 2
    try:
        config = PayConfig.from_settings(settings)
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_refund(settings, config, args.out_trade_no, args.amount, args.reason))


async def _refund(settings: Settings, config: PayConfig, out_trade_no: str, amount: int | None, reason: str) -> int:
    async with open_database(settings) as db, PayClient(config) as client:
        payments = Payments(config, client, db, load_fees(), Sealer(link_secret(settings)), Metrics(), time.time)
        try:
            order = await refund(payments, out_trade_no, amount, reason, actor="staff:cli")
        except PaymentError as exc:
            print(f"{PROG}: refund refused: {exc} ({exc.code})", file=sys.stderr)
            return 1
    print(json.dumps(order_summary(order), ensure_ascii=False, indent=2))
    return 0
