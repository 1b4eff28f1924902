"""The WeChat stand-in speaks like the real API: paths, JSON shapes, errcodes and the rules behind them."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.cli import main
from bot.config import Settings
from tests.fixtures.services import free_port
from tests.fixtures.wechat import OPENID, StubFactory, StubHandle, gradbot_env

OTHER = "oStudent_0002_zYxWvUtSrQpOn"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Api:
    def __init__(self, http: aiohttp.ClientSession, stub: StubHandle) -> None:
        self.http, self.stub = http, stub

    async def call(self, method: str, path: str, token: str | None = None, body: Any = None,
                   **params: str) -> dict[str, Any]:
        if token is not None:
            params["access_token"] = token
        async with self.http.request(method, f"{self.stub.url}/cgi-bin/{path}", params=params,
                                     json=body) as resp:
            assert resp.status == 200
            data: dict[str, Any] = await resp.json(content_type=None)
            return data

    async def token(self, creds: dict[str, str] | None = None, force: bool = False) -> dict[str, Any]:
        body = {"grant_type": "client_credential", "appid": self.stub.config.appid,
                "secret": self.stub.config.secret, "force_refresh": force, **(creds or {})}
        return await self.call("POST", "stable_token", body=body)

    async def fresh(self) -> str:
        return str((await self.token())["access_token"])

    async def text(self, token: str, content: str = "你好", openid: str = OPENID) -> dict[str, Any]:
        body = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        return await self.call("POST", "message/custom/send", token, body)

    async def template(self, token: str, thing: str = "审核通过", client_msg_id: str | None = None,
                       template_id: str = "TPL_REVIEW") -> dict[str, Any]:
        body: dict[str, Any] = {"touser": OPENID, "template_id": template_id, "data": {
            "thing1": {"value": thing}, "time2": {"value": "2026-06-01"},
            "character_string3": {"value": "GB-0001"}}}
        if client_msg_id:
            body["client_msg_id"] = client_msg_id
        return await self.call("POST", "message/template/send", token, body)


@pytest.fixture
def api(http: aiohttp.ClientSession, wechat_stub: StubHandle) -> Api:
    return Api(http, wechat_stub)


def errcode(data: dict[str, Any]) -> int:
    return int(data.get("errcode", 0))


# -- tokens ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("creds", "code"), [({"appid": "wx_wrong"}, 40013), ({"secret": "wrong"}, 40125),
                                             ({"grant_type": "password"}, 40002)])
async def test_stable_token_checks_credentials(api: Api, creds: dict[str, str], code: int) -> None:
    data = await api.token(creds)
    assert errcode(data) == code
    assert " rid: " in data["errmsg"]


async def test_stable_token_normal_mode_returns_the_same_token(api: Api) -> None:
    first, second = await api.token(), await api.token()
    assert first["access_token"] == second["access_token"]
    assert first["expires_in"] == 7200


async def test_force_refresh_revokes_the_previous_token(api: Api) -> None:
    old = await api.fresh()
    new = str((await api.token(force=True))["access_token"])
    assert new != old
    assert errcode(await api.text(old)) == 40001


async def test_classic_token_keeps_the_previous_valid_for_five_minutes(api: Api, wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction()
    q = {"grant_type": "client_credential", "appid": wechat_stub.config.appid, "secret": wechat_stub.config.secret}
    old = (await api.call("GET", "token", **q))["access_token"]
    new = (await api.call("GET", "token", **q))["access_token"]
    assert old != new
    assert errcode(await api.text(old)) == 0
    await wechat_stub.advance(301)
    assert errcode(await api.text(old)) == 42001
    assert errcode(await api.text(new)) == 0


async def test_token_errors(api: Api, wechat_stub: StubHandle) -> None:
    assert errcode(await api.call("GET", "user/info", openid=OPENID)) == 41001
    assert errcode(await api.call("GET", "user/info", "made-up", openid=OPENID)) == 40001
    token = await api.fresh()
    await wechat_stub.expire_tokens()
    assert errcode(await api.call("GET", "user/info", token, openid=OPENID)) == 42001
    assert await api.fresh() != token


async def test_tokens_expire_with_the_clock(wechat_stub_factory: StubFactory, http: aiohttp.ClientSession) -> None:
    stub = await wechat_stub_factory(token_ttl=60)
    api = Api(http, stub)
    token = await api.fresh()
    await stub.advance(61)
    assert errcode(await api.call("GET", "user/info", token, openid=OPENID)) == 42001


# -- customer-service window -----------------------------------------------------------------

async def test_no_cs_message_without_an_interaction(api: Api) -> None:
    data = await api.text(await api.fresh())
    assert errcode(data) == 45015
    assert data["errmsg"].startswith("response out of time limit or subscription is canceled rid: ")


async def test_five_cs_messages_per_student_message(api: Api, wechat_stub: StubHandle) -> None:
    token = await api.fresh()
    await wechat_stub.interaction()
    assert [errcode(await api.text(token, f"第{i}条")) for i in range(6)] == [0] * 5 + [45047]
    inbox = await wechat_stub.inbox()
    assert [m["payload"]["content"] for m in inbox] == [f"第{i}条" for i in range(5)]
    assert {m["type"] for m in inbox} == {"text"} and {m["channel"] for m in inbox} == {"cs"}
    await wechat_stub.interaction()
    assert errcode(await api.text(token)) == 0


async def test_window_closes_after_48_hours(api: Api, wechat_stub: StubHandle) -> None:
    token = await api.fresh()
    await wechat_stub.interaction()
    await wechat_stub.advance(48 * 3600 + 1)
    token = await api.fresh()  # the old token expired on the way
    assert errcode(await api.text(token)) == 45015


async def test_menu_click_allows_three_for_a_minute(api: Api, wechat_stub: StubHandle) -> None:
    token = await api.fresh()
    await wechat_stub.interaction(kind="click")
    assert [errcode(await api.text(token)) for _ in range(4)] == [0, 0, 0, 45047]
    await wechat_stub.interaction(kind="click")
    await wechat_stub.advance(61)
    assert errcode(await api.text(token)) == 45015


async def test_unsubscribe_closes_the_window(api: Api, wechat_stub: StubHandle) -> None:
    token = await api.fresh()
    await wechat_stub.interaction()
    await wechat_stub.interaction(kind="unsubscribe")
    assert errcode(await api.text(token)) == 45015


@pytest.mark.parametrize(("body", "code"), [
    ({"touser": "bad openid!", "msgtype": "text", "text": {"content": "x"}}, 40003),
    ({"touser": OPENID, "msgtype": "voice", "voice": {"media_id": "x"}}, 40008),
    ({"touser": OPENID, "msgtype": "text", "text": {"content": "  "}}, 44004),
    ({"touser": OPENID, "msgtype": "image", "image": {"media_id": "nope"}}, 40007),
    ({"touser": OPENID, "msgtype": "news", "news": {"articles": []}}, 45008),
    ({"touser": OPENID, "msgtype": "news", "news": {"articles": 5}}, 45008),
    ({"touser": OPENID, "msgtype": "text", "text": "not an object"}, 40008),
])
async def test_cs_send_rejects_bad_messages(api: Api, wechat_stub: StubHandle, body: dict[str, Any],
                                            code: int) -> None:
    await wechat_stub.interaction()
    assert errcode(await api.call("POST", "message/custom/send", await api.fresh(), body)) == code
    assert await wechat_stub.inbox() == []


async def test_bad_json_and_empty_body(api: Api, http: aiohttp.ClientSession, wechat_stub: StubHandle) -> None:
    url = f"{wechat_stub.url}/cgi-bin/message/custom/send"
    token = await api.fresh()
    for raw, code in ((b"{not json", 47001), (b"", 44002), (b"[1]", 47001)):
        async with http.post(url, params={"access_token": token}, data=raw) as resp:
            assert errcode(await resp.json()) == code


# -- typing ----------------------------------------------------------------------------------

async def test_typing_rules(api: Api, wechat_stub: StubHandle) -> None:
    token = await api.fresh()

    async def typing(command: str = "Typing") -> int:
        body = {"touser": OPENID, "command": command}
        return errcode(await api.call("POST", "message/custom/typing", token, body))

    assert await typing() == 45080
    await wechat_stub.interaction()
    assert [await typing(), await typing()] == [0, 45081]
    assert [await typing("CancelTyping"), await typing()] == [0, 0]
    await wechat_stub.advance(31)
    assert await typing() == 45080
    assert await typing("Dance") == 47001


# -- media -----------------------------------------------------------------------------------

async def _upload(http: aiohttp.ClientSession, stub: StubHandle, token: str, data: bytes, kind: str = "image",
                  field: str = "media") -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field(field, io.BytesIO(data), filename="photo.jpg", content_type="image/jpeg")
    url = f"{stub.url}/cgi-bin/media/upload"
    async with http.post(url, params={"access_token": token, "type": kind}, data=form) as resp:
        result: dict[str, Any] = await resp.json()
        return result


async def test_media_upload_and_get(api: Api, http: aiohttp.ClientSession, wechat_stub: StubHandle) -> None:
    token = await api.fresh()
    uploaded = await _upload(http, wechat_stub, token, b"\xff\xd8jpeg-bytes")
    assert uploaded["type"] == "image" and isinstance(uploaded["created_at"], int)
    media_id = uploaded["media_id"]
    url = f"{wechat_stub.url}/cgi-bin/media/get"
    async with http.get(url, params={"access_token": token, "media_id": media_id}) as resp:
        assert resp.content_type == "image/jpeg"
        assert f'filename="{media_id}.jpg"' in resp.headers["Content-Disposition"]
        assert await resp.read() == b"\xff\xd8jpeg-bytes"


async def test_media_get_error_is_json_text(api: Api, http: aiohttp.ClientSession, wechat_stub: StubHandle) -> None:
    token = await api.fresh()
    media_id = await wechat_stub.seed_media(b"\xff\xd8old")
    await wechat_stub.advance(3 * 86400 + 1)
    token = await api.fresh()
    for mid in (media_id, "unknown"):
        url = f"{wechat_stub.url}/cgi-bin/media/get"
        async with http.get(url, params={"access_token": token, "media_id": mid}) as resp:
            assert resp.content_type == "text/plain"
            assert errcode(await resp.json(content_type=None)) == 40007


@pytest.mark.parametrize(("size", "kind", "field", "code"), [
    ((2 << 20) + 1, "image", "media", 40009),
    ((64 << 10) + 1, "thumb", "media", 40012),
    (1, "gif", "media", 40004),
    (1, "image", "file", 41005),
])
async def test_media_upload_rules(api: Api, http: aiohttp.ClientSession, wechat_stub: StubHandle, size: int,
                                  kind: str, field: str, code: int) -> None:
    data = b"x" * size
    assert errcode(await _upload(http, wechat_stub, await api.fresh(), data, kind, field)) == code


async def test_broken_multipart_is_an_answer_not_a_crash(api: Api, http: aiohttp.ClientSession,
                                                         wechat_stub: StubHandle) -> None:
    params = {"access_token": await api.fresh(), "type": "image"}
    headers = {"Content-Type": "multipart/form-data; boundary=xyz"}
    async with http.post(f"{wechat_stub.url}/cgi-bin/media/upload", params=params, data=b"{}",
                         headers=headers) as resp:
        assert resp.status == 200
        assert errcode(await resp.json()) == 41005


async def test_image_message_with_uploaded_media(api: Api, wechat_stub: StubHandle) -> None:
    media_id = await wechat_stub.seed_media(b"\x89PNG", "image/png")
    await wechat_stub.interaction()
    body = {"touser": OPENID, "msgtype": "image", "image": {"media_id": media_id}}
    assert errcode(await api.call("POST", "message/custom/send", await api.fresh(), body)) == 0
    assert (await wechat_stub.inbox())[0] | {"timestamp": 0} == {
        "type": "image", "payload": {"media_id": media_id}, "timestamp": 0, "channel": "cs"}


# -- templates --------------------------------------------------------------------------------

async def test_template_rules(api: Api, wechat_stub: StubHandle) -> None:
    token = await api.fresh()
    assert errcode(await api.template(token)) == 43004
    await wechat_stub.interaction(kind="subscribe")
    assert errcode(await api.template(token, template_id="TPL_NOPE")) == 40037
    too_long = await api.template(token, thing="一" * 21)
    assert errcode(too_long) == 47003 and "data.thing1.value" in too_long["errmsg"]
    assert errcode(await api.template(token, thing="一" * 20)) == 0
    inbox = await wechat_stub.inbox()
    assert len(inbox) == 1 and inbox[0]["type"] == "template" and inbox[0]["channel"] == "template"
    assert inbox[0]["payload"]["data"]["thing1"]["value"] == "一" * 20


async def test_template_ascii_only_field(api: Api, wechat_stub: StubHandle) -> None:
    await wechat_stub.interaction(kind="subscribe")
    body = {"touser": OPENID, "template_id": "TPL_REVIEW", "data": {
        "thing1": {"value": "好"}, "time2": {"value": "今天"}, "character_string3": {"value": "编号1"}}}
    data = await api.call("POST", "message/template/send", await api.fresh(), body)
    assert errcode(data) == 47003 and "character_string3" in data["errmsg"]


async def test_client_msg_id_sends_once_within_ten_minutes(api: Api, wechat_stub: StubHandle) -> None:
    token = await api.fresh()
    await wechat_stub.interaction(kind="subscribe")
    first = await api.template(token, client_msg_id="job1:o1")
    again = await api.template(token, client_msg_id="job1:o1")
    assert first["msgid"] == again["msgid"]
    assert len(await wechat_stub.inbox()) == 1
    await wechat_stub.advance(601)
    token = await api.fresh()
    later = await api.template(token, client_msg_id="job1:o1")
    assert later["msgid"] != first["msgid"]
    assert len(await wechat_stub.inbox()) == 2


async def test_daily_template_quota(wechat_stub_factory: StubFactory, http: aiohttp.ClientSession) -> None:
    stub = await wechat_stub_factory(daily_template_quota=2)
    api = Api(http, stub)
    await stub.interaction(kind="subscribe")
    token = await api.fresh()
    assert [errcode(await api.template(token)) for _ in range(3)] == [0, 0, 45009]
    await stub.advance(86400)
    assert errcode(await api.template(await api.fresh())) == 0


# -- users and menu ----------------------------------------------------------------------------

async def test_user_info(api: Api, wechat_stub: StubHandle) -> None:
    token = await api.fresh()
    assert await api.call("GET", "user/info", token, openid=OTHER) == {"subscribe": 0, "openid": OTHER}
    await wechat_stub.interaction(kind="subscribe")
    info = await api.call("GET", "user/info", token, openid=OPENID, lang="zh_CN")
    assert info["subscribe"] == 1 and info["openid"] == OPENID and "nickname" not in info
    assert errcode(await api.call("GET", "user/info", token, openid="../x")) == 40003


MENU = {"button": [{"type": "click", "name": "绑定身份", "key": "BIND"},
                   {"name": "办理", "sub_button": [{"type": "click", "name": "关联学校", "key": "LINK_SCHOOL"}]},
                   {"type": "pic_photo_or_album", "name": "上传照片", "key": "UPLOAD_PHOTO"}]}


async def test_menu_create_and_rules(api: Api, http: aiohttp.ClientSession, wechat_stub: StubHandle) -> None:
    token = await api.fresh()

    async def create(menu: Any) -> int:
        raw = json.dumps(menu, ensure_ascii=False).encode()
        async with http.post(f"{wechat_stub.url}/cgi-bin/menu/create", params={"access_token": token},
                             data=raw) as resp:
            return errcode(await resp.json())

    assert await create({"button": MENU["button"] * 2}) == 40016
    assert await create({"button": [{"type": "click", "name": "一二三四五六", "key": "K"}]}) == 40018
    assert await create({"button": [{"name": "办理", "sub_button": [{"type": "click", "name": "x" * 61,
                                                                    "key": "K"}]}]}) == 40025
    # aiohttp's json= escapes Chinese as \\uXXXX, which WeChat refuses on this endpoint.
    assert errcode(await api.call("POST", "menu/create", token, MENU)) == 40033
    assert await create(MENU) == 0
    async with http.get(f"{wechat_stub.url}/_stub/menu") as resp:
        assert await resp.json() == MENU


# -- faults and control endpoints ------------------------------------------------------------

async def test_injected_errcodes_then_recovery(api: Api, wechat_stub: StubHandle) -> None:
    token = await api.fresh()
    await wechat_stub.interaction()
    await wechat_stub.faults(-1, count=2, paths=("message/custom/send",))
    assert [errcode(await api.text(token)) for _ in range(3)] == [-1, -1, 0]
    assert len(await wechat_stub.inbox()) == 1
    assert (await wechat_stub.calls())["message/custom/send"] == 3


async def test_injected_http_status_and_unlimited_count(api: Api, http: aiohttp.ClientSession,
                                                        wechat_stub: StubHandle) -> None:
    await wechat_stub.faults(status=502, count=0, paths=("/cgi-bin/user/info",))
    token = await api.fresh()  # other paths are untouched
    for _ in range(3):
        async with http.get(f"{wechat_stub.url}/cgi-bin/user/info", params={"access_token": token}) as resp:
            assert resp.status == 502
    await wechat_stub.reset()
    assert await wechat_stub.calls() == {}
    assert errcode(await api.call("GET", "user/info", await api.fresh(), openid=OPENID)) == 0


@pytest.mark.parametrize(("path", "body"), [
    ("faults", {"count": 2}), ("faults", {"errcode": "x"}), ("interaction", {"openid": OPENID, "kind": "dance"}),
    ("interaction", {"openid": "no spaces allowed"}), ("advance", {"seconds": -5}), ("advance", [1]),
    ("advance", {"seconds": True}), ("faults", {"errcode": -1, "paths": "media/get"}),
])
async def test_control_endpoints_refuse_bad_input(http: aiohttp.ClientSession, wechat_stub: StubHandle, path: str,
                                                  body: Any) -> None:
    async with http.post(f"{wechat_stub.url}/_stub/{path}", json=body) as resp:
        assert resp.status == 400
        assert "error" in await resp.json()


# -- the command -------------------------------------------------------------------------------

async def test_wechat_stub_command_serves_the_api(settings: Settings, http: aiohttp.ClientSession) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "wechat-stub", "--port", str(port), "--template", "TPL:thing1=thing",
        env=gradbot_env(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        banner = (await proc.stdout.readline()).decode()
        assert f"http://127.0.0.1:{port}" in banner
        body = {"grant_type": "client_credential", "appid": settings.wechat_appid, "secret": settings.wechat_secret}
        for _ in range(200):
            try:
                async with http.post(f"http://127.0.0.1:{port}/cgi-bin/stable_token", json=body) as resp:
                    assert "access_token" in await resp.json()
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("the stand-in never answered")
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.parametrize("spec", ["TPL", "TPL:thing1", "TPL:thing1=colour", ":thing1=thing"])
def test_wechat_stub_command_refuses_bad_templates(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wechat-stub", "--template", spec]) == 2
    assert "expected ID:field=type" in capsys.readouterr().err
