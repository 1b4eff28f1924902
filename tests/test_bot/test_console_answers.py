"""The review page lists the student's answers with their steps' labels, and never the dialog's
bookkeeping, also for items stored when a review kept every string of the dialog."""

from __future__ import annotations

import sqlalchemy as sa

from storage.files import FileStore
from storage.sql.tables import reviews as review_table
from tests.fixtures.console import PROCEDURE_TITLE, ConsoleWorld
from tests.fixtures.photos import jpeg, studio

STUDENT = "oAnswersStudent_0001_abcdefg"


async def _page(world: ConsoleWorld, documents: list[dict[str, object]]) -> tuple[int, str]:
    review_id = await world.seed(STUDENT, "submitted")
    async with world.db.begin() as conn:
        await conn.execute(sa.update(review_table).where(review_table.c.id == review_id).values(documents=documents))
    browser = await world.signed_in("li")
    assert (await browser.get(f"/console/reviews/{review_id}")).status == 200
    return review_id or 0, browser.last


async def test_an_old_item_with_every_dialog_string_shows_only_the_answers(console_world: ConsoleWorld) -> None:
    digest = FileStore.under(console_world.settings.data_dir).put(jpeg(studio()))
    legacy = [{"name": "title", "value": PROCEDURE_TITLE}, {"name": "opens", "value": "2025-03-11"},
              {"name": "closes", "value": "2025-05-05"}, {"name": "collection_code", "value": "ab12cd34ef"},
              {"name": "fixed_url", "value": "https://gradbot.example/files/SEALED-TOKEN"},
              {"name": "photo_id", "value": 41}, {"name": "pay_item", "value": "photo_collection"},
              {"name": "证件照片", "kind": "document", "sha256": digest, "content_type": "image/jpeg",
               "value": "证件照片（image/jpeg，30KB）"}]
    review_id, page = await _page(console_world, legacy)
    assert "<li>填写采集码：ab12cd34ef</li>" in page
    assert f"/console/reviews/{review_id}/document/0" in page and "证件照片（image/jpeg，30KB）" in page
    for internal in ("SEALED-TOKEN", "/files/", "2025-03-11", "2025-05-05", "fixed_url", "photo_id", "pay_item",
                     "photo_collection", "opens", "closes"):
        assert internal not in page, internal
    assert page.count(PROCEDURE_TITLE) == 1  # the heading only, not as an answer


async def test_a_new_item_shows_its_labelled_answers(console_world: ConsoleWorld) -> None:
    answers = [{"kind": "answer", "name": "collection_code", "label": "填写采集码", "value": "ab12cd34ef"},
               {"kind": "answer", "name": "note", "label": "备注", "value": ""}]
    _, page = await _page(console_world, answers)
    assert "<li>填写采集码：ab12cd34ef</li>" in page and "<li>备注：（未填写）</li>" in page
