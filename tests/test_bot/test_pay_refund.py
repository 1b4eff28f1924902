"""``gradbot orders show/refund`` as a staff member runs them: the JSON contract, and refunds that
happen once however often (or after whatever crash) the command is retried."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable

import pytest

from bot.cli import main
from bot.services.payments.refunds import refund_number
from tests.fixtures.pay import STUDENT, PayWorld

Cli = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def gradbot_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``gradbot ARGS`` in a worker thread (its own event loop), while this loop serves the sandbox."""
    async def run(world: PayWorld, *args: str) -> tuple[int, str, str]:
        for name, value in world.env().items():
            if name.startswith("GRADBOT_"):
                monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(args))
        out, err = capsys.readouterr()
        return code, out, err
    return run


async def test_the_command_line_entry_point(pay_world: PayWorld) -> None:
    """The real console script once (argparse wiring, exit code), the rest in-process for speed."""
    no = await _paid(pay_world)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "orders", "show", no, "--json",
                                                env=pay_world.env(), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert json.loads(out)["state"] == "paid"


async def _paid(world: PayWorld) -> str:
    order = await world.pay_natively(world.link())
    await world.wait_state(order.out_trade_no, "paid")
    return order.out_trade_no


async def test_orders_show_json_contract(pay_world: PayWorld, gradbot_cli: Cli) -> None:
    no = await _paid(pay_world)
    code, out, err = await gradbot_cli(pay_world, "orders", "show", no, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert set(shown) == {"out_trade_no", "openid", "item", "amount_fen", "state", "paid_at", "transaction_id"}
    assert shown["out_trade_no"] == no and shown["openid"] == STUDENT and shown["item"] == "photo_collection"
    assert shown["amount_fen"] == 1350 and shown["state"] == "paid" and shown["transaction_id"]
    code, _, err = await gradbot_cli(pay_world, "orders", "show", "GBNOSUCHORDER0001", "--json")
    assert code == 1 and "no order" in err


async def test_refund_retried_refunds_once(pay_world: PayWorld, gradbot_cli: Cli) -> None:
    world = pay_world
    no = await _paid(world)
    for _ in range(2):
        code, out, err = await gradbot_cli(world, "orders", "refund", no, "--reason", "重复缴费")
        assert code == 0, err
        assert json.loads(out)["state"] == "refunded"
    refunds = await world.sandbox.get("refunds")
    assert [(r["out_refund_no"], r["amount"]["refund"]) for r in refunds] == [(refund_number(no), 1350)]
    events = await world.events(no)
    assert [e.to_state for e in events] == ["created", "paid", "refunded"]
    assert events[-1].source == "staff:cli" and events[-1].details["out_refund_no"] == refund_number(no)


async def test_refund_after_a_crash_before_recording_refunds_once(pay_world: PayWorld, gradbot_cli: Cli) -> None:
    world = pay_world
    no = await _paid(world)
    # WeChat Pay accepted the refund, then the process died before recording it.
    await world.payments.client.refund(out_refund_no=refund_number(no), out_trade_no=no, refund_fen=500,
                                       total_fen=1350, reason="部分退款")
    assert (await world.get_order(no)).state == "paid"
    code, _, err = await gradbot_cli(world, "orders", "refund", no, "--amount", "500", "--reason", "部分退款")
    assert code == 0, err
    assert [r["amount"]["refund"] for r in await world.sandbox.get("refunds")] == [500]
    assert (await world.get_order(no)).state == "refunded"


async def test_refund_refuses_unpaid_orders_and_bad_amounts(pay_world: PayWorld, gradbot_cli: Cli) -> None:
    world = pay_world
    async with world.pc.get(world.link()) as resp:
        assert resp.status == 200
    unpaid = (await world.order_of()).out_trade_no
    code, _, err = await gradbot_cli(world, "orders", "refund", unpaid, "--reason", "x")
    assert code == 1 and "not_paid" in err
    code, _, err = await gradbot_cli(world, "orders", "refund", "GBNOSUCHORDER0001", "--reason", "x")
    assert code == 1 and "order_not_found" in err
    code, _, err = await gradbot_cli(world, "orders", "refund", unpaid, "--amount", "0", "--reason", "x")
    assert code == 1
    assert await world.sandbox.get("refunds") == []
