"""WeChat Pay API v3 through wechatpayv3's async client, with the traps of 2.0.4 handled in one place.

reference/pay-notify-identity.md §2: the base URL can only be changed through the private
``_core._gate_way`` (pinned version; a test fails if it disappears); the async client needs the
``WeChatPayType`` of ``wechatpayv3.async_`` (issue #81); some failures raise instead of returning;
and ``callback()`` is synchronous and may block on an unknown serial, so callers pre-check headers
(:mod:`bot.services.payments.notify`). The httpx client lives between :meth:`open` and :meth:`close`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

import httpx
from wechatpayv3.async_ import AsyncWeChatPay, WeChatPayType

from bot.services.payments.config import PayConfig
from bot.services.payments.errors import AlreadyPaid, PayApiError

GATEWAY_ATTRIBUTE = "_gate_way"
_NOTIFY_HEADERS = ("Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial",
                   "Wechatpay-Signature-Type")


def set_gateway(sdk: Any, base: str) -> None:
    """Point the SDK at ``base``; refuses loudly when an upgrade moved the private attribute."""
    core = getattr(sdk, "_core", None)
    if core is None or not isinstance(getattr(core, GATEWAY_ATTRIBUTE, None), str):
        raise RuntimeError("wechatpayv3 no longer has _core._gate_way: the base-URL override needs updating "
                           "(gradbot pins wechatpayv3==2.0.4)")
    setattr(core, GATEWAY_ATTRIBUTE, base)


class PayClient:
    def __init__(self, config: PayConfig, *, connect_timeout: float = 3.0, read_timeout: float = 8.0) -> None:
        self.config = config
        self.sdk = AsyncWeChatPay(
            wechatpay_type=WeChatPayType.JSAPI, mchid=config.mchid, private_key=config.private_key,
            cert_serial_no=config.serial_no, appid=config.appid, apiv3_key=config.apiv3_key,
            notify_url=config.notify_url, public_key=config.public_key, public_key_id=config.public_key_id,
            timeout=(connect_timeout, read_timeout),
        )
        set_gateway(self.sdk, config.api_base)

    async def open(self) -> PayClient:
        await self.sdk.__aenter__()
        return self

    async def close(self) -> None:
        await self.sdk.__aexit__(None, None, None)

    async def __aenter__(self) -> PayClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- ordering ------------------------------------------------------------------------------

    async def prepay_jsapi(self, order: Mapping[str, Any], payer_openid: str) -> str:
        data = await self._call(self.sdk.pay(**order, payer={"openid": payer_openid}, pay_type=WeChatPayType.JSAPI))
        return str(data["prepay_id"])

    async def prepay_native(self, order: Mapping[str, Any]) -> str:
        data = await self._call(self.sdk.pay(**order, pay_type=WeChatPayType.NATIVE))
        return str(data["code_url"])

    def jsapi_params(self, prepay_id: str, now: float | None = None) -> dict[str, str]:
        """What the page hands to ``getBrandWCPayRequest``; paySign is the merchant's RSA signature."""
        params = {"appId": self.config.appid, "timeStamp": str(int(now if now is not None else time.time())),
                  "nonceStr": secrets.token_hex(16), "package": f"prepay_id={prepay_id}", "signType": "RSA"}
        fields = [params["appId"], params["timeStamp"], params["nonceStr"], params["package"]]
        params["paySign"] = self.sdk.sign(fields)
        return params

    # -- queries, close, refund ----------------------------------------------------------------

    async def query(self, out_trade_no: str) -> dict[str, Any] | None:
        """The transaction as WeChat Pay has it; None when it never received the order."""
        try:
            return await self._call(self.sdk.query(out_trade_no=out_trade_no))
        except PayApiError as exc:
            if exc.code in ("ORDER_NOT_EXIST", "ORDERNOTEXIST"):
                return None
            raise

    async def query_transaction(self, transaction_id: str) -> dict[str, Any]:
        return await self._call(self.sdk.query(transaction_id=transaction_id))

    async def close_order(self, out_trade_no: str) -> None:
        """Close an unpaid order (204); AlreadyPaid when the student paid after all."""
        try:
            await self._call(self.sdk.close(out_trade_no=out_trade_no))
        except PayApiError as exc:
            if exc.code == "ORDERPAID":
                raise AlreadyPaid(out_trade_no) from None
            if exc.code in ("ORDER_NOT_EXIST", "ORDERNOTEXIST", "ORDER_CLOSED"):
                return
            raise

    async def refund(self, *, out_refund_no: str, out_trade_no: str, refund_fen: int, total_fen: int,
                     reason: str) -> dict[str, Any]:
        amount = {"refund": refund_fen, "total": total_fen, "currency": "CNY"}
        return await self._call(self.sdk.refund(out_refund_no=out_refund_no, amount=amount,
                                                out_trade_no=out_trade_no, reason=reason))

    # -- notifications -------------------------------------------------------------------------

    def decrypt_notification(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any] | None:
        """Verify the signature over the raw body and decrypt; None when either fails.

        Only call after :func:`bot.services.payments.notify.precheck` (serial, type, time window).
        """
        canonical = {name: headers.get(name, "") for name in _NOTIFY_HEADERS}  # case-insensitive lookup
        try:
            result = self.sdk.callback(canonical, body)
        except Exception:  # the SDK raises bare Exception on malformed input
            return None
        return result if isinstance(result, dict) else None

    # -- machinery -----------------------------------------------------------------------------

    async def _call(self, pending: Any) -> dict[str, Any]:
        try:
            status, text = await pending
        except httpx.HTTPError as exc:
            raise PayApiError(0, "NETWORK", type(exc).__name__) from exc
        except Exception as exc:  # the SDK signals a bad response signature this way
            raise PayApiError(0, "BAD_RESPONSE", str(exc)[:100]) from exc
        body = _json(text)
        if 200 <= status < 300:
            return body
        raise PayApiError(status, str(body.get("code", f"HTTP_{status}")), str(body.get("message", "")))


def _json(text: Any) -> dict[str, Any]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
