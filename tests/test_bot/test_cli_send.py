"""``gradbot send`` posts callbacks exactly as WeChat does (plain and safe mode) and prints the reply."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from bot.config import Settings
from tests.fixtures.app import Clock, GradbotFactory
from tests.fixtures.photos import jpeg, studio
from tests.fixtures.wechat import StubHandle

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


async def _send(*args: str) -> tuple[int, dict[str, Any] | str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "send", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    text = out.decode()
    try:
        return proc.returncode or 0, json.loads(text)
    except ValueError:
        return proc.returncode or 0, err.decode()


async def test_send_text_in_plain_mode(make_gradbot: GradbotFactory, settings: Settings) -> None:
    import time

    bot = await make_gradbot(clock=Clock(time.time()))
    url = str(bot.client.make_url("/wechat"))
    code, body = await _send("--url", url, "--token", settings.wechat_token, "--text", "帮助")
    assert code == 0 and isinstance(body, dict)
    assert body["status"] == 200 and "实名认证" in body["reply"]["Content"]


async def test_send_click_event_in_safe_mode(make_gradbot: GradbotFactory, settings: Settings) -> None:
    import time

    s = settings.with_(wechat_aes_key=KEY)
    bot = await make_gradbot(s, clock=Clock(time.time()))
    url = str(bot.client.make_url("/wechat"))
    code, body = await _send("--url", url, "--token", s.wechat_token, "--appid", s.wechat_appid,
                             "--aes-key", KEY, "--event", "CLICK:BIND")
    assert code == 0 and isinstance(body, dict) and "同意" in body["reply"]["Content"]


async def test_wrong_token_exits_non_zero_with_the_status(make_gradbot: GradbotFactory) -> None:
    import time

    bot = await make_gradbot(clock=Clock(time.time()))
    code, body = await _send("--url", str(bot.client.make_url("/wechat")), "--token", "wrong", "--text", "hi")
    assert code == 1 and isinstance(body, dict) and body["status"] == 403


async def test_send_image_uploads_to_the_stand_in_first(make_gradbot: GradbotFactory, settings: Settings,
                                                         wechat_stub: StubHandle, tmp_path: Path) -> None:
    import time

    bot = await make_gradbot(settings.with_(wechat_api_base=wechat_stub.url), clock=Clock(time.time()))
    photo = tmp_path / "me.jpg"
    photo.write_bytes(jpeg(studio()))
    code, body = await _send("--url", str(bot.client.make_url("/wechat")), "--token", settings.wechat_token,
                             "--api", wechat_stub.url, "--image", str(photo))
    assert code == 0 and isinstance(body, dict)
    assert "实名认证" in body["reply"]["Content"]  # a photo before any procedure: told what comes first
    assert [m.data for m in wechat_stub.state.media.values()] == [photo.read_bytes()]
