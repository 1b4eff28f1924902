"""Dates in student texts read the Chinese way: 2025年3月11日, or 3月11日 inside a year already named."""

from __future__ import annotations

from datetime import date

from bot.render import Renderer, cn_date


def test_dates_are_written_the_chinese_way() -> None:
    assert cn_date("2025-03-11") == "2025年3月11日"
    assert cn_date(date(2025, 12, 1), year=False) == "12月1日"
    assert cn_date("") == ""  # a window without that end


def test_procedure_texts_can_use_the_filter() -> None:
    renderer = Renderer()
    renderer.add_templates({"t": "{{ data.opens | cn_date }}至{{ data.closes | cn_date(year=False) }}"})
    out = renderer.env.get_template("t").render(data={"opens": "2025-03-11", "closes": "2025-05-05"})
    assert out == "2025年3月11日至5月5日"
