"""Made-up answers that walk a student through the demo procedure (never real people's data).

A plain table, imported by the orchestrator before anything heavy: the ID number is
``make_test_id("420302", "20010203", "141")`` (bot/services/identity/sandbox.py), which the
sandbox verifier accepts as a match; tests/test_bot/test_demo.py checks that it still is.
"""

HINTS = {
    "start": "演示采集",
    "name": "陈小明",
    "id_number": "420302200102031419",
    "province": "湖北",
    "city": "十堰",
    "school": "汉江师范学院",
    "cohort": "2025届 毕业",
    "code": "DEMO2025AB",
}
