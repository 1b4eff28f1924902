"""Shared fixtures. Real Redis always: GRADBOT_REDIS_URL if it answers, else a private redis-server."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.wechat",
    "tests.fixtures.photos",
    "tests.fixtures.app",
    "tests.fixtures.sql",
    "tests.fixtures.pay",
    "tests.fixtures.procedure",
    "tests.fixtures.console",
    "tests.fixtures.faults",
    "tests.fixtures.demo",
    "tests.fixtures.screenshots",
]
