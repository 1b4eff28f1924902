"""Checks on a payment notification, in the order that keeps the SDK from ever blocking or being fooled.

1. :func:`precheck` on the headers alone: our ``PUB_KEY_ID`` as serial (an unknown one would make
   the SDK fetch certificates over the network), the signature type the SDK insists on, no
   ``WECHATPAY/SIGNTEST/`` probe, a timestamp within ±5 minutes (the SDK has no replay window).
2. The SDK verifies the signature over the raw body bytes and decrypts the AES-256-GCM resource.
3. :func:`transaction_of` checks appid and mchid; the service then checks the order and the amount.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.services.payments.errors import NotificationRejected

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
WINDOW_SECONDS = 300
MAX_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class Transaction:
    out_trade_no: str
    transaction_id: str
    trade_state: str
    amount_fen: int
    currency: str
    payer_openid: str
    success_time: str


def precheck(headers: Mapping[str, str], public_key_id: str, wall_now: float) -> None:
    if headers.get("Wechatpay-Serial", "") != public_key_id:
        raise NotificationRejected("unknown_serial")
    if headers.get("Wechatpay-Signature-Type", "") != SIGNATURE_TYPE:
        raise NotificationRejected("signature_type")
    signature = headers.get("Wechatpay-Signature", "")
    if not signature:
        raise NotificationRejected("no_signature")
    if signature.startswith(PROBE_PREFIX):
        raise NotificationRejected("probe")
    if not headers.get("Wechatpay-Nonce"):
        raise NotificationRejected("no_nonce")
    try:
        timestamp = int(headers.get("Wechatpay-Timestamp", ""))
    except ValueError:
        raise NotificationRejected("bad_timestamp") from None
    if abs(wall_now - timestamp) > WINDOW_SECONDS:
        raise NotificationRejected("stale")


def transaction_of(envelope: Mapping[str, Any], appid: str, mchid: str) -> Transaction:
    resource = envelope.get("resource")
    if not isinstance(resource, dict):
        raise NotificationRejected("malformed", status=400)
    if resource.get("appid") != appid or resource.get("mchid") != mchid:
        raise NotificationRejected("not_ours", status=400)
    amount = resource.get("amount") or {}
    try:
        return Transaction(
            out_trade_no=str(resource["out_trade_no"]), transaction_id=str(resource.get("transaction_id", "")),
            trade_state=str(resource["trade_state"]), amount_fen=int(amount["total"]),
            currency=str(amount.get("currency", "CNY")),
            payer_openid=str((resource.get("payer") or {}).get("openid", "")),
            success_time=str(resource.get("success_time", "")),
        )
    except (KeyError, TypeError, ValueError):
        raise NotificationRejected("malformed", status=400) from None
