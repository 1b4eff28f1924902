"""The pay sandbox speaks WeChat Pay API v3 to the real SDK (wechatpayv3 2.0.4) over loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3.async_ import AsyncWeChatPay

from bot.config import Settings
from bot.sandbox import pay_sign
from bot.sandbox.pay_keys import SandboxKeys
from bot.sandbox.pay_sandbox import SandboxConfig, create_pay_sandbox
from bot.services.payments.client import GATEWAY_ATTRIBUTE, PayClient, set_gateway
from bot.services.payments.config import PayConfig
from bot.services.payments.errors import AlreadyPaid, PayApiError
from tests.fixtures.app import Clock
from tests.fixtures.pay import pay_settings
from tests.fixtures.services import free_port

APPID = "wx2c2769f8efd9abc2"


def _order(no: str = "GBSANDBOX0000001", total: int = 1350, **extra: object) -> dict[str, object]:
    return {"description": "毕业生图像信息采集费", "out_trade_no": no, "amount": {"total": total, "currency": "CNY"},
            **extra}


@pytest.fixture
async def sandbox(sandbox_keys: SandboxKeys) -> AsyncIterator[tuple[TestServer, Clock]]:
    clock = Clock(now=time.time())
    server = TestServer(create_pay_sandbox(SandboxConfig(sandbox_keys, APPID, clock=clock)), host="127.0.0.1")
    await server.start_server()
    yield server, clock
    await server.close()


@pytest.fixture
async def client(sandbox: tuple[TestServer, Clock], sandbox_keys: SandboxKeys,
                 settings: Settings) -> AsyncIterator[PayClient]:
    server = sandbox[0]
    s = pay_settings(settings.with_(wechat_appid=APPID), sandbox_keys, str(server.make_url("")).rstrip("/"), 9)
    async with PayClient(PayConfig.from_settings(s)) as pay:
        yield pay


def test_the_sdk_still_has_the_private_base_url_override(sandbox_keys: SandboxKeys, settings: Settings) -> None:
    """Fails when a wechatpayv3 upgrade moves ``_core._gate_way``: gradbot could no longer use the sandbox."""
    pay = PayClient(PayConfig.from_settings(pay_settings(settings, sandbox_keys, "http://127.0.0.1:9", 9)))
    assert getattr(pay.sdk._core, GATEWAY_ATTRIBUTE) == "http://127.0.0.1:9"
    assert isinstance(pay.sdk, AsyncWeChatPay)
    with pytest.raises(RuntimeError, match="_gate_way"):
        set_gateway(object(), "http://127.0.0.1:9")


async def test_calls_reach_the_sandbox_and_responses_verify(client: PayClient,
                                                            sandbox: tuple[TestServer, Clock]) -> None:
    assert await client.query("GBNEVERORDERED01") is None  # 404 ORDER_NOT_EXIST from the sandbox, not the internet
    prepay_id = await client.prepay_jsapi(_order(), "oPayer")
    assert prepay_id.startswith("wx")
    found = await client.query("GBSANDBOX0000001")
    assert found is not None and found["trade_state"] == "NOTPAY" and found["amount"]["total"] == 1350


async def test_same_number_with_identical_parameters_renews_the_prepay_id(client: PayClient) -> None:
    first = await client.prepay_jsapi(_order(), "oPayer")
    second = await client.prepay_jsapi(_order(), "oPayer")
    assert first != second
    with pytest.raises(PayApiError) as caught:
        await client.prepay_jsapi(_order(total=1), "oPayer")
    assert caught.value.status == 403 and caught.value.code == "OUT_TRADE_NO_USED"


async def test_closed_orders_cannot_be_reordered_and_close_is_a_signed_204(client: PayClient) -> None:
    await client.prepay_native(_order())
    await client.close_order("GBSANDBOX0000001")  # the SDK verified the empty body's signature
    with pytest.raises(PayApiError) as caught:
        await client.prepay_native(_order())
    assert caught.value.code == "ORDER_CLOSED"
    found = await client.query("GBSANDBOX0000001")
    assert found is not None and found["trade_state"] == "CLOSED"


async def test_paid_orders_cannot_be_closed_or_reordered_and_query_by_transaction_id(
        client: PayClient, sandbox: tuple[TestServer, Clock]) -> None:
    prepay_id = await client.prepay_jsapi(_order(), "oPayer")
    async with aiohttp.ClientSession() as http, http.post(
            sandbox[0].make_url(f"/__sandbox/pay/{prepay_id}"), json={"outcome": "success"}) as resp:
        assert resp.status == 200
    with pytest.raises(AlreadyPaid):
        await client.close_order("GBSANDBOX0000001")
    with pytest.raises(PayApiError) as caught:
        await client.prepay_jsapi(_order(), "oPayer")
    assert caught.value.code == "ORDERPAID"
    paid = await client.query("GBSANDBOX0000001")
    assert paid is not None and paid["trade_state"] == "SUCCESS" and paid["payer"]["openid"] == "oPayer"
    again = await client.query_transaction(paid["transaction_id"])
    assert again["out_trade_no"] == "GBSANDBOX0000001"


async def test_order_expiry_is_enforced(client: PayClient, sandbox: tuple[TestServer, Clock]) -> None:
    clock = sandbox[1]
    expire = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(clock.now + 600))
    prepay_id = await client.prepay_jsapi(_order(time_expire=expire), "oPayer")
    clock.advance(601)
    found = await client.query("GBSANDBOX0000001")
    assert found is not None and found["trade_state"] == "CLOSED"
    async with aiohttp.ClientSession() as http, http.post(
            sandbox[0].make_url(f"/__sandbox/pay/{prepay_id}"), json={"outcome": "success"}) as resp:
        assert resp.status == 400 and (await resp.json())["code"] == "ORDER_CLOSED"


async def test_a_refund_number_refunds_once(client: PayClient, sandbox: tuple[TestServer, Clock]) -> None:
    prepay_id = await client.prepay_jsapi(_order(), "oPayer")
    async with aiohttp.ClientSession() as http, http.post(
            sandbox[0].make_url(f"/__sandbox/pay/{prepay_id}"), json={"outcome": "success"}) as resp:
        assert resp.status == 200
    args = {"out_refund_no": "RFGBSANDBOX0000001", "out_trade_no": "GBSANDBOX0000001", "refund_fen": 1350,
            "total_fen": 1350, "reason": "测试"}
    first = await client.refund(**args)  # type: ignore[arg-type]
    second = await client.refund(**args)  # type: ignore[arg-type]
    assert first["refund_id"] == second["refund_id"]
    with pytest.raises(PayApiError) as caught:
        await client.refund(**{**args, "out_refund_no": "RFANOTHER"})  # type: ignore[arg-type]
    assert caught.value.code == "NOT_ENOUGH"


async def _raw(server: TestServer, headers: dict[str, str], body: bytes = b"{}") -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.post(
            server.make_url("/v3/pay/transactions/native"), data=body, headers=headers) as resp:
        return resp.status, dict(await resp.json())


async def test_bad_merchant_signatures_get_401_sign_error(sandbox: tuple[TestServer, Clock],
                                                          sandbox_keys: SandboxKeys) -> None:
    server = sandbox[0]
    key = pay_sign.load_private(sandbox_keys.merchant_private_path.read_bytes())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not the merchant's key

    def auth(signer: object, ts: int, body: str, serial: str = sandbox_keys.serial_no) -> str:
        a = pay_sign.Authorization(sandbox_keys.mchid, "NONCE", "", ts, serial)
        sig = pay_sign.sign(signer, pay_sign.request_message("POST", "/v3/pay/transactions/native", a, body))  # type: ignore[arg-type]
        return (f'WECHATPAY2-SHA256-RSA2048 mchid="{sandbox_keys.mchid}",nonce_str="NONCE",signature="{sig}",'
                f'timestamp="{ts}",serial_no="{serial}"')

    now, body = int(time.time()), json.dumps(_order())
    cases = [{}, {"Authorization": "Basic abc"}, {"Authorization": auth(other, now, body)},
             {"Authorization": auth(key, now - 400, body)}, {"Authorization": auth(key, now, body, "ABC")},
             {"Authorization": auth(key, now, body + " ")}]
    for headers in cases:
        status, answer = await _raw(server, headers, body.encode())
        assert (status, answer["code"]) == (401, "SIGN_ERROR"), headers
    status, answer = await _raw(server, {"Authorization": auth(key, now, body)}, body.encode())
    assert status == 400 and answer["code"] == "PARAM_ERROR"  # signed right; appid/mchid missing from the body


async def test_cashier_page_for_people_and_the_bridge_script(client: PayClient,
                                                             sandbox: tuple[TestServer, Clock]) -> None:
    server = sandbox[0]
    code_url = await client.prepay_native(_order())
    token = code_url.rsplit("pr=", 1)[1]
    async with aiohttp.ClientSession() as http:
        async with http.get(server.make_url(f"/__sandbox/cashier/{token}")) as resp:
            html = await resp.text()
            assert resp.status == 200 and "¥13.50" in html and "模拟支付成功" in html
        async with http.post(server.make_url(f"/__sandbox/cashier/{token}"), data={"outcome": "success"}) as resp:
            assert resp.status == 200 and "已选择：success" in await resp.text()
        async with http.get(server.make_url("/__sandbox/bridge.js")) as resp:
            assert resp.status == 200 and "getBrandWCPayRequest" in await resp.text()
        async with http.post(server.make_url("/__sandbox/pay/nosuchprepay"), json={"outcome": "success"}) as resp:
            assert resp.status == 404
    found = await client.query("GBSANDBOX0000001")
    assert found is not None and found["trade_state"] == "SUCCESS"


async def test_gradbot_pay_sandbox_command_generates_keys_and_prints_settings(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADBOT_")}
    env.update({"GRADBOT_DATA_DIR": str(tmp_path), "GRADBOT_WECHAT_APPID": APPID, "PYTHONUNBUFFERED": "1"})
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "pay-sandbox", "--port", str(port),
                                                env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 30)).decode() for _ in range(3)]
        assert f"http://127.0.0.1:{port}" in lines[0] and "gradbot-pay.env" in lines[1]
        env_file = (tmp_path / "pay-sandbox" / "gradbot-pay.env").read_text()
        assert "GRADBOT_PAY_PUBLIC_KEY_ID=PUB_KEY_ID_" in env_file
        assert oct((tmp_path / "pay-sandbox" / "merchant_private.pem").stat().st_mode)[-3:] == "600"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/v3/certificates") as resp:
                        assert resp.status == 401  # unsigned: SIGN_ERROR
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the sandbox never answered")
    finally:
        proc.terminate()
        await proc.wait()
