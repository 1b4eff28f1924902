"""The procedure file pages over HTTP: ``/docs/{token}`` (generated PDFs) and ``/upload/{token}`` (the
upload page for files the chat cannot carry). Bad links and bad uploads get a page with the right
status code; a good upload is stored, recorded and told to the student's dialog."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import aiohttp

from bot import keys
from storage.sql import documents
from tests.fixtures.app import Gradbot

OPENID = "oUpload_Student_00000000001"
NOW = 1_700_000_000.0


def _seal(gradbot: Gradbot, purpose: str, claims: dict[str, Any], ttl: float = 3600) -> str:
    return gradbot.app[keys.SERVICES].sealer.seal(purpose, claims, gradbot.clock() + ttl)


def _upload_token(gradbot: Gradbot, max_kb: int = 2, ttl: float = 3600) -> str:
    claims = {"o": OPENID, "p": "shanxi_zikao_graduation", "s": "old_scans__zip", "t": "扫描件压缩包",
              "f": ["ZIP"], "m": max_kb}
    return _seal(gradbot, "upload", claims, ttl)


def _zip(size: int = 100) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("scan.jpg", b"x" * size)
    return buf.getvalue()


async def _post(gradbot: Gradbot, token: str, body: bytes | None, field: str = "file") -> tuple[int, str]:
    form = aiohttp.FormData()
    if body is not None:
        form.add_field(field, io.BytesIO(body), filename="scans.zip", content_type="application/zip")
    else:
        form.add_field("other", "x")
    resp = await gradbot.client.post(f"/upload/{token}", data=form)
    return resp.status, await resp.text()


async def test_a_good_upload_is_stored_recorded_and_told_to_the_student(gradbot: Gradbot) -> None:
    gradbot.clock.now = NOW
    token = _upload_token(gradbot)
    page = await gradbot.client.get(f"/upload/{token}")
    text = await page.text()
    assert page.status == 200 and "扫描件压缩包" in text and 'accept=".zip"' in text and "2KB" in text
    status, text = await _post(gradbot, token, _zip())
    assert status == 200 and "上传成功" in text
    async with gradbot.app[keys.SERVICES].db.read() as conn:
        stored = await documents.latest(conn, OPENID, "shanxi_zikao_graduation", "old_scans__zip")
    assert stored is not None and stored.source == "link" and stored.content_type == "application/zip"
    assert gradbot.app[keys.SERVICES].files.get(stored.sha256) == _zip()
    assert [(o, key) for o, _, key in gradbot.jobs.cs] == [(OPENID, f"upload:{stored.id}")]


async def test_bad_uploads_get_the_right_status_and_store_nothing(gradbot: Gradbot) -> None:
    gradbot.clock.now = NOW
    token = _upload_token(gradbot, max_kb=2)
    assert (await _post(gradbot, token, _zip(4000)))[0] == 413
    assert (await _post(gradbot, token, b"PK not really a zip"))[0] == 415
    assert (await _post(gradbot, token, None))[0] == 400
    resp = await gradbot.client.post(f"/upload/{token}", data=b"plain body", headers={"Content-Type": "text/plain"})
    assert resp.status == 400 and "没有收到文件" in await resp.text()
    async with gradbot.app[keys.SERVICES].db.read() as conn:
        assert await documents.for_procedure(conn, OPENID, "shanxi_zikao_graduation") == []


async def test_bad_and_expired_links_are_refused(gradbot: Gradbot) -> None:
    gradbot.clock.now = NOW
    expired = _upload_token(gradbot, ttl=-1)
    assert (await gradbot.client.get(f"/upload/{expired}")).status == 410
    assert (await _post(gradbot, expired, _zip()))[0] == 410
    assert (await gradbot.client.get("/upload/not-a-token")).status == 404
    doc = _seal(gradbot, "doc", {"d": "0" * 64, "t": "application/pdf", "n": "x.pdf"})
    assert (await gradbot.client.get(f"/docs/{doc}")).status == 404  # sealed, but no such file
    assert (await gradbot.client.get(f"/docs/{_upload_token(gradbot)}")).status == 404  # another purpose
    old = _seal(gradbot, "doc", {"d": "0" * 64}, ttl=-1)
    assert (await gradbot.client.get(f"/docs/{old}")).status == 410


async def test_a_document_link_serves_the_stored_pdf(gradbot: Gradbot) -> None:
    gradbot.clock.now = NOW
    digest = gradbot.app[keys.SERVICES].files.put(b"%PDF-1.4 test")
    token = _seal(gradbot, "doc", {"d": digest, "t": "application/pdf", "n": "form.pdf"})
    resp = await gradbot.client.get(f"/docs/{token}")
    assert resp.status == 200 and resp.content_type == "application/pdf" and await resp.read() == b"%PDF-1.4 test"
    assert "no-store" in resp.headers["Cache-Control"] and "form.pdf" in resp.headers["Content-Disposition"]
