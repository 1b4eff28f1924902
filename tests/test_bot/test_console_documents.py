"""Reviewers open the documents a student submitted (the files, not only their names); others can't."""

from __future__ import annotations

import sqlalchemy as sa

from storage.files import FileStore
from storage.sql.tables import reviews as review_table
from tests.fixtures.console import HUNNU, ConsoleWorld
from tests.fixtures.photos import jpeg, studio

STUDENT = "oDocsStudent_0001_abcdefghij"


async def test_a_reviewer_opens_a_submitted_document(console_world: ConsoleWorld) -> None:
    world = console_world
    review_id = await world.seed(STUDENT, "submitted")
    scan = jpeg(studio())
    digest = FileStore.under(world.settings.data_dir).put(scan)
    documents = [{"name": "学号", "value": "2021001"},
                 {"name": "身份证正面", "kind": "document", "sha256": digest, "content_type": "image/jpeg",
                  "value": "身份证正面（image/jpeg，30 KB）"}]
    async with world.db.begin() as conn:
        await conn.execute(sa.update(review_table).where(review_table.c.id == review_id).values(documents=documents))
    browser = await world.signed_in("li")
    page = await browser.get(f"/console/reviews/{review_id}")
    assert page.status == 200 and f"/console/reviews/{review_id}/document/0" in browser.last
    async with browser.http.get(f"{browser.base}/console/reviews/{review_id}/document/0") as resp:
        assert resp.status == 200 and await resp.read() == scan
        assert resp.headers["Content-Type"].startswith("image/jpeg")
    assert (await browser.get(f"/console/reviews/{review_id}/document/1")).status == 404
    assert (await browser.get(f"/console/reviews/{review_id}/document/x")).status == 404


async def test_documents_follow_the_reviewers_school_scope(console_world: ConsoleWorld) -> None:
    world = console_world
    elsewhere = await world.seed(STUDENT, "submitted", school=HUNNU)
    browser = await world.signed_in("li")  # a reviewer for 汉江师范学院 only
    assert (await browser.get(f"/console/reviews/{elsewhere}/document/0")).status == 404
