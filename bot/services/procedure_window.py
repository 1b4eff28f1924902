"""When a procedure is open for one student: a window staff set in the console (``/console/windows``,
table ``procedure_windows``) wins over the procedure file's ``window``; without one the file's dates
apply. The most specific console window counts (the student's school and cohort, then school, then
cohort, then every school); a row only seeded from the file at start-up is not a staff edit.
docs/procedures.md, docs/console.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection

from dialogs.procedure import Procedure
from storage.sql import windows
from storage.sql.links import SchoolLink


@dataclass(frozen=True, slots=True)
class OpenDates:
    opens: date | None  # China dates, both inclusive; None: no limit on that side
    closes: date | None

    def contains(self, day: date) -> bool:
        return not ((self.opens and day < self.opens) or (self.closes and day > self.closes))

    def data(self) -> dict[str, str]:
        """The dates as the dialog's data keeps them for its texts (``data.opens``, ``data.closes``)."""
        return {"opens": self.opens.isoformat() if self.opens else "",
                "closes": self.closes.isoformat() if self.closes else ""}


async def open_dates(conn: AsyncConnection, proc: Procedure, link: SchoolLink | None) -> OpenDates:
    """The dates in force for a student with school ``link`` (None: not linked yet, so the procedure's
    own school, if it names one)."""
    school = link.school_code if link and link.school_code else (None if proc.school == "*" else proc.school)
    staff = await windows.set_by_staff(conn, proc.name, school, link.cohort if link else None)
    if staff is not None:
        return OpenDates(staff.opens, staff.closes)
    return OpenDates(proc.opens, proc.closes)
