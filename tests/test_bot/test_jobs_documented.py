"""Every task the worker's broker registers has a row in docs/jobs.md's job table."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import Settings
from bot.jobs import build_broker

ROOT = Path(__file__).resolve().parents[2]
TASK = re.compile(r"`(gradbot\.[a-z_]+)\(")


def documented_tasks(doc: str) -> set[str]:
    """Task names in the first column of the table rows in docs/jobs.md."""
    names: set[str] = set()
    for line in doc.splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            names.update(TASK.findall(cells[1]))
    return names


async def test_every_registered_job_is_in_docs_jobs_md() -> None:
    broker = build_broker(Settings())  # never started: no connection is opened
    try:
        registered = set(broker.get_all_tasks())
    finally:
        await broker.connection_pool.disconnect()
    assert {"gradbot.send_cs_messages", "gradbot.send_notification"} <= registered
    missing = sorted(registered - documented_tasks((ROOT / "docs" / "jobs.md").read_text(encoding="utf-8")))
    assert not missing, f"docs/jobs.md's job table lacks: {', '.join(missing)}"
