"""PDFs students print (receipts, admission tickets, registration forms), made with fpdf2.

Chinese needs a CJK font: Noto Sans CJK SC from Debian's ``fonts-noto-cjk`` (the Makefile installs
it), or any TrueType/OpenType file named by ``GRADBOT_PDF_FONT`` in the environment of the process.
fpdf2 embeds only the glyphs used, so a one-page form stays small (about 10–30 KB).
Rendering costs about a second (parsing the font), so callers run it in a thread.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian, Ubuntu: fonts-noto-cjk
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",  # Arch
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",  # Fedora
)
SC_FACE = "Noto Sans CJK SC"


class FontMissing(RuntimeError):
    """No CJK font: install Debian's fonts-noto-cjk or set GRADBOT_PDF_FONT."""


@dataclass(frozen=True)
class PdfForm:
    title: str
    rows: Sequence[tuple[str, str]]
    subtitle: str = ""
    notes: Sequence[str] = ()
    footer: str = ""
    copies: int = 1
    copy_labels: Sequence[str] = field(default_factory=lambda: ("第一份", "第二份", "第三份", "第四份"))


@functools.cache
def find_font() -> tuple[str, int]:
    """(path, face index in a collection): the simplified-Chinese face of Noto Sans CJK by default."""
    configured = os.environ.get("GRADBOT_PDF_FONT", "")
    for path in ([configured] if configured else list(FONT_CANDIDATES)):
        if path and Path(path).is_file():
            return path, _face_index(path)
    raise FontMissing("no CJK font for PDFs: apt-get install fonts-noto-cjk, or set GRADBOT_PDF_FONT")


def _face_index(path: str) -> int:
    if not path.lower().endswith((".ttc", ".otc")):
        return 0
    from fontTools.ttLib import TTCollection  # type: ignore[import-untyped]

    with TTCollection(path, lazy=True) as collection:
        names = [face["name"].getDebugName(4) for face in collection.fonts]
    return next((i for i, n in enumerate(names) if n == SC_FACE), 0)


def render_pdf(form: PdfForm) -> bytes:
    path, index = find_font()
    pdf = FPDF(format="A4")
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_font("cjk", "", path, collection_font_number=index)
    pdf.set_title(form.title)
    pdf.set_creator("gradbot")
    for n in range(max(1, form.copies)):
        _page(pdf, form, form.copy_labels[n] if form.copies > 1 and n < len(form.copy_labels) else "")
    return bytes(pdf.output())


def _page(pdf: FPDF, form: PdfForm, copy_label: str) -> None:
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    pdf.cell(0, 12, form.title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    if form.subtitle or copy_label:
        pdf.cell(0, 7, "  ".join(p for p in (form.subtitle, copy_label) if p), align="C",
                 new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("cjk", size=11)
    with pdf.table(col_widths=(32, 142), line_height=7, first_row_as_headings=False,
                   text_align=("LEFT", "LEFT"), headings_style=FontFace()) as table:
        for label, value in form.rows:
            row = table.row()
            row.cell(label)
            row.cell(value or " ")
    pdf.ln(5)
    pdf.set_font("cjk", size=10)
    for note in form.notes:
        pdf.multi_cell(0, 6, note, new_x="LMARGIN", new_y="NEXT")
    if form.footer:
        pdf.ln(3)
        pdf.set_font("cjk", size=8)
        pdf.cell(0, 5, form.footer, align="R", new_x="LMARGIN", new_y="NEXT")
