"""School linking: the catalogue, fuzzy matching, provinces and cities, and enrolment details.

Pure and synchronous; no storage, no dialogs. See docs/schools.md.
"""

from bot.services.schools.catalogue import (
    ParseReport,
    RowError,
    School,
    load_catalogue,
    parse_moe_csv,
    parse_moe_text,
    with_aliases,
)
from bot.services.schools.enrolment import (
    Cohort,
    CohortKind,
    EducationType,
    Enrolment,
    Level,
    Purpose,
    parse_enrolment,
)
from bot.services.schools.matching import (
    Match,
    SchoolIndex,
    choices_message,
    choices_reply,
    clear_winner,
    match_school,
)
from bot.services.schools.regions import cities, find_cities, normalise_city, normalise_province, provinces

__all__ = [
    "Cohort",
    "CohortKind",
    "EducationType",
    "Enrolment",
    "Level",
    "Match",
    "ParseReport",
    "Purpose",
    "RowError",
    "School",
    "SchoolIndex",
    "choices_message",
    "choices_reply",
    "cities",
    "clear_winner",
    "find_cities",
    "load_catalogue",
    "match_school",
    "normalise_city",
    "normalise_province",
    "parse_enrolment",
    "parse_moe_csv",
    "parse_moe_text",
    "provinces",
    "with_aliases",
]
