"""Advisory place of registration from python-stdnum's historic county table (``stdnum/cn/loc.dat``).

The table keeps counties that were merged or renamed, with the years they existed. We do not use
``stdnum.cn.ric.get_birth_place``: it rejects a code unless the county existed in the *birth* year,
but the address code is where the number was issued, often years after birth, so it would flag
real people. We take the newest name of whatever the code ever meant. The result is advisory:
staff see it in the review queue and it never rejects a number (reference §4.1). Loading the table
takes 0.04–0.2 s, so the app loads it at start-up (:func:`load`) rather than in the first student's
turn, which stalled that process's event loop for as long (seen in the soak's first minute).
"""

from __future__ import annotations

import re

from stdnum import numdb

_YEARS = re.compile(r"^\[[0-9]*-[0-9]*\]")


def load() -> None:
    """Read the county table now (stdnum keeps it for the life of the process)."""
    numdb.get("cn/loc")


def _newest(names: str) -> str:
    """``[1983-1995]东区,[1996-]芙蓉区`` → ``芙蓉区``."""
    return _YEARS.sub("", names.split(",")[-1])


def _names(code: str) -> tuple[str, str]:
    province = county = ""
    for _part, props in numdb.get("cn/loc").info(code):
        province = props.get("province", province)
        county = _newest(props["county"]) if "county" in props else county
    return province, county


def birth_region(number: str) -> str | None:
    """``湖南省长沙市芙蓉区`` for the first six digits of a mainland number; None when unknown."""
    province, county = _names(number[:6])
    if not province or not county:
        return None
    prefecture = _names(number[:4] + "00")[1] if number[4:6] != "00" else ""
    # Municipalities list "市辖区"/"县" and provinces "省直辖县级…" here: not place names.
    if prefecture in (province, county) or not prefecture.endswith(("市", "州", "盟", "地区")):
        prefecture = ""
    return province + prefecture + (county if county != province else "")
