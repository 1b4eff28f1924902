"""PDFs students print, read back the way a person sees them: pdftoppm renders the first page,
pdftotext reads the Chinese text (so the CJK font is really embedded), pdfinfo counts the copies."""

from __future__ import annotations

import pytest

from bot.services import pdf
from bot.services.pdf import FontMissing, PdfForm, render_pdf
from tests.fixtures.seed_steps import pdf_first_page_png, pdf_pages, pdf_text

FORM = PdfForm(
    title="高等教育自学考试毕业生登记表", subtitle="山西省高等教育自学考试",
    rows=[("姓名", "陈**"), ("个人简历", "2015.09–2018.06 太原市第五中学 学生\n2018.07–至今 自由职业"),
          ("自我鉴定", "")],
    notes=["请打印两份，交回所选县（市、区）自考部门。"], footer="编号 ABC · 生成于 2025年4月10日", copies=2)


def test_a_form_in_two_copies_reads_back_as_chinese_text() -> None:
    data = render_pdf(FORM)
    assert data.startswith(b"%PDF-") and len(data) < 100_000  # only the glyphs used are embedded
    text = pdf_text(data)
    assert pdf_pages(data) == 2 and text.count("高等教育自学考试毕业生登记表") == 2
    for expected in ("第一份", "第二份", "陈**", "太原市第五中学", "2018.07–至今 自由职业", "交回所选县"):
        assert expected in text, expected
    width, height, ink = pdf_first_page_png(data)
    assert height / width == pytest.approx(297 / 210, rel=0.02) and 0.003 < ink < 0.2


def test_one_copy_has_no_copy_label() -> None:
    data = render_pdf(PdfForm(title="准考证", rows=[("考试科目", "英语")]))
    assert pdf_pages(data) == 1 and "第一份" not in pdf_text(data) and "英语" in pdf_text(data)


def test_a_missing_font_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADBOT_PDF_FONT", "/nonexistent/font.ttf")
    pdf.find_font.cache_clear()
    try:
        with pytest.raises(FontMissing, match="fonts-noto-cjk"):
            render_pdf(FORM)
    finally:
        monkeypatch.delenv("GRADBOT_PDF_FONT")
        pdf.find_font.cache_clear()
