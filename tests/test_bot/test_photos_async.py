"""check_photo runs off the event loop, by thread or by process pool, with the same result."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest

from bot.services.photos import PhotoProfile, analyse, check_photo, process_pool
from tests.fixtures import photos as ph


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with process_pool(1) as executor:
        yield executor


async def _ticks_while(job: asyncio.Task[object]) -> int:
    ticks = 0
    while not job.done():
        ticks += 1
        await asyncio.sleep(0)
    return ticks


@pytest.mark.parametrize("use_pool", [False, True], ids=["thread", "process"])
async def test_loop_stays_free(use_pool: bool, pool: ProcessPoolExecutor, chsi: PhotoProfile) -> None:
    """Another coroutine keeps running while a 12 MP photo is checked and fixed."""
    data = ph.phone_photo()
    job = asyncio.create_task(check_photo(data, chsi, fix=True, executor=pool if use_pool else None))
    ticks = await _ticks_while(job)
    report = job.result()
    assert ticks > 10
    assert report.fixed is not None and report.fixed.ok


async def test_pool_and_thread_agree(pool: ProcessPoolExecutor, studio_jpeg: bytes, chsi: PhotoProfile) -> None:
    a = await check_photo(studio_jpeg, chsi, fix=False, executor=pool)
    b = await check_photo(studio_jpeg, chsi, fix=False)
    c = analyse(studio_jpeg, chsi, fix=False)
    assert [x.to_json() for x in a.checks] == [x.to_json() for x in b.checks] == [x.to_json() for x in c.checks]


async def test_concurrent_threads_share_one_engine(chsi: PhotoProfile) -> None:
    """The engine's lock serialises MediaPipe; four checks at once all come back right."""
    photos = [ph.jpeg(ph.studio(), kb=chsi.kb), ph.jpeg(ph.darken(ph.studio(), 0.35), kb=chsi.kb)] * 2
    reports = await asyncio.gather(*(check_photo(p, chsi, fix=False) for p in photos))
    assert [r.ok for r in reports] == [True, False, True, False]
