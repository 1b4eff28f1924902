"""School catalogue, MoE CSV import, matching, provinces and cities, and enrolment details."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.services.schools import (
    CohortKind,
    EducationType,
    Level,
    Purpose,
    School,
    SchoolIndex,
    choices_message,
    cities,
    clear_winner,
    find_cities,
    load_catalogue,
    match_school,
    normalise_city,
    normalise_province,
    parse_enrolment,
    parse_moe_csv,
    parse_moe_text,
    provinces,
    with_aliases,
)

TODAY = date(2026, 5, 1)
HEADER = "序号,学校名称,学校标识码,主管部门,所在地,办学层次,备注\n"


@pytest.fixture(scope="module")
def index() -> SchoolIndex:
    return SchoolIndex(load_catalogue())


def by_name(name: str) -> School:
    return next(s for s in load_catalogue() if s.name == name)


# --- the starter catalogue -----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "code", "province", "city"), [
    ("湖南师范大学", "4143010542", "湖南省", "长沙市"),
    ("湖南农业大学", "4143010537", "湖南省", "长沙市"),
    ("湖南农业大学东方科技学院", "4143012653", "湖南省", "长沙市"),
    ("长沙理工大学", "4143010536", "湖南省", "长沙市"),
    ("汉江师范学院", "4142010518", "湖北省", "十堰市"),
    ("山西大学", "4114010108", "山西省", "太原市"),
    ("太原理工大学", "4114010112", "山西省", "太原市"),
    ("山西财经大学", "4114010125", "山西省", "太原市"),
])
def test_seed_schools_are_in_the_catalogue(name: str, code: str, province: str, city: str) -> None:
    school = by_name(name)
    assert (school.code, school.province, school.city) == (code, province, city)
    assert school.code_confirmed and school.key == code


def test_catalogue_is_consistent_with_the_region_table() -> None:
    schools = load_catalogue()
    codes = [s.code for s in schools if s.code]
    assert len(codes) == len(set(codes)) == 363
    assert {s.province for s in schools} == {"湖南省", "湖北省", "山西省"}
    assert all(s.city in cities(s.province) for s in schools)
    assert all(s.code[2:4] in ("43", "42", "14") for s in schools if s.code)


def test_unconfirmed_codes_are_marked() -> None:
    unconfirmed = [s for s in load_catalogue() if not s.code_confirmed]
    assert {s.name for s in unconfirmed} == {"湖南开放大学", "湖北开放大学", "山西开放大学"}
    assert all(s.code == "" and s.key == f"name:{s.name}" and "待核实" in s.note for s in unconfirmed)


def test_aliases_are_attached() -> None:
    assert "湖南师大" in by_name("湖南师范大学").aliases
    assert "郧阳师专" in by_name("汉江师范学院").aliases
    renamed = with_aliases([by_name("山西大学")], {"山西大学": ("晋大",)})
    assert "晋大" in renamed[0].aliases


# --- importing the MoE list ----------------------------------------------------------------------

def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "list.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_import_reads_the_moe_shape(tmp_path: Path) -> None:
    text = ("全国高等学校名单,,,,,,\n" + HEADER + "湖南省（2所）,,,,,,\n"
            "1,湖南师范大学,4143010542,湖南省,长沙市,本科,\n2,长沙医学院,4143010823,湖南省教育厅,长沙市,本科,民办\n"
            "\n湖北省（1所）,,,,,,\n3,汉江师范学院,4142010518,湖北省,十堰市,本科,\n注：本名单不含港澳台地区高校,,,,,,\n")
    report = parse_moe_csv(write(tmp_path, text, "gb18030"))
    assert report.ok, report.errors
    assert [(s.name, s.province, s.note) for s in report.schools] == [
        ("湖南师范大学", "湖南省", ""), ("长沙医学院", "湖南省", "民办"), ("汉江师范学院", "湖北省", "")]


def test_import_reports_bad_rows_with_line_numbers(tmp_path: Path) -> None:
    text = (HEADER + "湖南省（9所）,,,,,,\n"
            "1,湖南师范大学,4143010542,湖南省,长沙市,本科,\n"  # line 3: good
            "2,湖南大学,41430105,教育部,长沙市,本科,\n"  # 4: short code
            "3,长沙学院,4143010542,湖南省,长沙市,本科,\n"  # 5: duplicate code
            "4,湖南师范大学,4143099999,湖南省,长沙市,本科,\n"  # 6: duplicate name
            "5,湘潭大学,4143010530,湖南省,,本科,\n"  # 7: no city
            "6,吉首大学,4143010531,湖南省,吉首市,研究生,\n"  # 8: bad level
            "7,,4143010532,教育部,长沙市,本科,\n"  # 9: no name
            "火星省（1所）,,,,,,\n"  # 10: unknown province
            "8,南华大学,4143010555,湖南省,衡阳市,本科,\n")  # 11: province inferred from the code
    report = parse_moe_csv(write(tmp_path, text))
    assert [e.line for e in report.errors] == [4, 5, 6, 7, 8, 9, 10]
    assert "10 digits" in report.errors[0].message and "line 3" in report.errors[1].message
    assert [(s.name, s.province) for s in report.schools] == [("湖南师范大学", "湖南省"), ("南华大学", "湖南省")]


def test_import_without_a_header_row_fails_clearly() -> None:
    report = parse_moe_text("湖南师范大学,4143010542\n")
    assert not report.ok and report.errors[0].line == 0 and "学校名称" in report.errors[0].message


def test_a_missing_code_is_allowed_only_when_asked() -> None:
    text = HEADER + "湖南省（1所）,,,,,,\n,湖南开放大学,,湖南省,长沙市,,成人高校\n"
    assert not parse_moe_text(text).ok
    assert parse_moe_text(text, allow_missing_code=True).schools[0].level == ""


# --- matching ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected"), [
    ("湖南师大", "湖南师范大学"),  # alias
    ("湖南农大", "湖南农业大学"),
    ("湖南师范大学", "湖南师范大学"),
    ("漢江師範學院", "汉江师范学院"),  # traditional characters
    ("湖南师范大学继续教育学院", "湖南师范大学"),  # department words dropped
    ("我是湖南师范大学的", "湖南师范大学"),
    ("长沙理工大雪", "长沙理工大学"),  # homophone typo
    ("东方科技学院", "湖南农业大学东方科技学院"),
    ("湖南农业大学 / 东方科技学院", "湖南农业大学东方科技学院"),
    ("城南学院", "长沙理工大学城南学院"),  # suffix of an independent college
    ("中国地质大学(武汉)", "中国地质大学（武汉）"),
    ("hnsfdx", "湖南师范大学"),  # pinyin initials
    ("changshaligongdaxue", "长沙理工大学"),
    ("山西财大", "山西财经大学"),
])
def test_clear_winners(index: SchoolIndex, query: str, expected: str) -> None:
    winner = clear_winner(index.match(query))
    assert winner is not None and winner.school.name == expected
    assert 0 < winner.confidence <= 1


def test_a_typo_puts_the_right_school_first_and_asks(index: SchoolIndex) -> None:
    matches = index.match("湖南师范大字")
    assert matches[0].school.name == "湖南师范大学" and clear_winner(matches) is None
    assert choices_message("湖南师范大字", matches).startswith("找到几所相近的学校")


def test_an_ambiguous_query_gives_numbered_choices(index: SchoolIndex) -> None:
    matches = index.match("湖南师范")
    assert clear_winner(matches) is None
    assert [m.school.name for m in matches[:2]] == ["湖南师范大学", "湖南第一师范学院"]
    message = choices_message("湖南师范", matches)
    assert "1. 湖南师范大学（长沙市）" in message and "2. 湖南第一师范学院（长沙市）" in message


def test_a_shared_alias_is_ambiguous_until_the_province_is_known(index: SchoolIndex) -> None:
    both = index.match("湖大")
    assert {m.school.name for m in both[:2]} == {"湖南大学", "湖北大学"} and clear_winner(both) is None
    winner = clear_winner(index.subset(province="湖南省").match("湖大"))
    assert winner is not None and winner.school.name == "湖南大学"


def test_subset_by_city(index: SchoolIndex) -> None:
    assert {s.city for s in index.subset(province="湖南省", city="长沙市").schools} == {"长沙市"}


def test_no_match(index: SchoolIndex) -> None:
    assert index.match("湖") == [] and index.match("xyz") == []
    assert "没有找到“xyz”" in choices_message("xyz", [])


def test_a_single_candidate_is_offered_for_confirmation() -> None:
    matches = match_school("湖南师范大字", [by_name("湖南师范大学")])
    assert len(matches) == 1 and "回复 1" in choices_message("湖南师范大字", matches)


# --- provinces and cities ------------------------------------------------------------------------

def test_province_list() -> None:
    names = provinces()
    assert len(names) == 34 and "湖南省" in names and "香港特别行政区" in names and "苏鲁交界" not in names
    assert cities("北京市") == ("北京市",) and cities("火星") == ()
    assert {"长沙市", "湘西土家族苗族自治州"} <= set(cities("湖南省"))
    assert {"十堰市", "仙桃市"} <= set(cities("湖北省"))


@pytest.mark.parametrize(("text", "province"), [
    ("湖南", "湖南省"), ("湖南省", "湖南省"), (" 湘 ", "湖南省"), ("廣西", "广西壮族自治区"),
    ("广西省", "广西壮族自治区"), ("内蒙古", "内蒙古自治区"), ("北京", "北京市"), ("香港", "香港特别行政区"),
    ("火星", None), ("", None),
])
def test_normalise_province(text: str, province: str | None) -> None:
    assert normalise_province(text) == province


def test_normalise_city() -> None:
    assert normalise_city("长沙") == "长沙市" and normalise_city("长沙市", "湖南省") == "长沙市"
    assert normalise_city("湘西") == "湘西土家族苗族自治州"
    assert normalise_city("長沙") == "长沙市"
    assert normalise_city("张家") is None  # 张家口市 and 张家界市
    assert find_cities("张家") == [("河北省", "张家口市"), ("湖南省", "张家界市")]
    assert normalise_city("张家", "湖南省") == "张家界市"
    assert normalise_city("长沙", "湖北省") is None


# --- enrolment -----------------------------------------------------------------------------------

def test_cohort_and_purpose() -> None:
    degree = parse_enrolment("成人教育 2022级 学位申请", today=TODAY)
    assert (degree.education, degree.cohort and degree.cohort.label, degree.purpose) == (
        EducationType.ADULT, "2022级", Purpose.DEGREE)
    assert degree.missing == () and degree.message == ""
    graduation = parse_enrolment("自考 2025届 毕业", today=TODAY)
    assert graduation.cohort is not None and graduation.cohort.kind is CohortKind.GRADUATION
    assert graduation.purpose is Purpose.GRADUATION and graduation.education is EducationType.SELF_STUDY


@pytest.mark.parametrize(("text", "label"), [
    ("22级", "2022级"), ("２０２２级", "2022级"), ("2022 级", "2022级"), ("2022年入学", "2022级"),
    ("2025年毕业", "2025届"),
])
def test_cohort_forms(text: str, label: str) -> None:
    cohort = parse_enrolment(text, today=TODAY).cohort
    assert cohort is not None and cohort.label == label


def test_cohort_years_are_checked_against_the_injected_day() -> None:
    too_old = parse_enrolment("1999级", today=TODAY)
    assert too_old.problem == "year_out_of_range" and too_old.cohort is None and "1999" in too_old.message
    assert parse_enrolment("1999级", today=date(2010, 1, 1)).cohort is not None
    assert parse_enrolment("2031届", today=TODAY).cohort is not None
    assert parse_enrolment("2033届", today=TODAY).problem == "year_out_of_range"
    assert parse_enrolment("13812345678", today=TODAY).cohort is None  # a phone number is no year


def test_a_bare_year_asks_whether_entry_or_graduation() -> None:
    result = parse_enrolment("成人教育 2022 年上学位申请", today=TODAY)
    assert result.problem == "kind_missing" and "2022级" in result.message and "2022届" in result.message


def test_levels_and_education_types() -> None:
    result = parse_enrolment("专升本 2023级 函授 学位", today=TODAY)
    assert (result.level, result.education, result.purpose) == (Level.TOP_UP, EducationType.ADULT, Purpose.DEGREE)
    assert parse_enrolment("高起专", today=TODAY).level is Level.ASSOCIATE
    assert parse_enrolment("国开 本科", today=TODAY).education is EducationType.OPEN
    assert parse_enrolment("网教", today=TODAY).education is EducationType.ONLINE
    assert [t.label for t in EducationType] == ["成人教育", "自学考试", "网络教育", "开放教育", "普通全日制"]
    assert [lv.label for lv in Level] == ["专科", "本科", "专升本"]


def test_missing_parts_are_named() -> None:
    result = parse_enrolment("22级", today=TODAY)
    assert result.missing == ("education", "purpose")
    assert "学历类型" in result.message and "办理事项" in result.message and "级或届" not in result.message
