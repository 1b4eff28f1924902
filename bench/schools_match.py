"""``python -m bench.schools_match``: school matching speed over a catalogue of about 3,000 schools.

The starter catalogue has 366 schools; the rest are made-up names in the MoE list's shape (a city
plus a common suffix) so the index has the size of the full national list. Prints index build
time and per-query latency (median and p95 over several rounds) for typical queries.
"""

from __future__ import annotations

import statistics
import time

from bot.services.schools import School, SchoolIndex, cities, load_catalogue, provinces

SUFFIXES = ("职业技术学院", "师范学院", "学院", "大学", "医学高等专科学校", "理工学院", "财经学院",
            "幼儿师范高等专科学校")
QUERIES = ("湖南师大", "湖南师范大学", "漢江師範學院", "湖南师范大字", "东方科技学院", "湖南师范", "hnsfdx",
           "湖南师范大学继续教育学院", "科技学院", "长沙理工大雪")


def catalogue(target: int = 3000) -> list[School]:
    schools = list(load_catalogue())
    names = {s.name for s in schools}
    for province in provinces():
        for city in cities(province):
            for suffix in SUFFIXES:
                name = city.removesuffix("市") + suffix
                if name not in names and len(schools) < target:
                    names.add(name)
                    schools.append(School("", name, province, city, province, "专科"))
    return schools


def main(rounds: int = 50) -> None:
    schools = catalogue()
    started = time.perf_counter()
    index = SchoolIndex(schools)
    print(f"{len(schools)} schools, index built in {time.perf_counter() - started:.2f} s")
    for query in QUERIES:
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            index.match(query)
            times.append(time.perf_counter() - t)
        p95 = sorted(times)[int(0.95 * len(times)) - 1]
        print(f"{query:14} median {statistics.median(times) * 1000:6.2f} ms   p95 {p95 * 1000:6.2f} ms")


if __name__ == "__main__":
    main()
