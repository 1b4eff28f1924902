"""WeRoBot reference: the echo robot of WeRoBot's README, served by gunicorn from bench/.venv-werobot.

Runs only in that separate venv (WeRoBot pins old dependencies). BENCH_WEROBOT_SESSIONS=0 turns the
default SQLite session storage off (``SESSION_STORAGE=False``); the runner starts gunicorn in a temp
directory, so ``werobot_session.sqlite3`` never lands in the repo.
"""

import os

import werobot

sessions = os.environ.get("BENCH_WEROBOT_SESSIONS", "1") == "1"
robot = werobot.WeRoBot(token=os.environ["BENCH_WECHAT_TOKEN"])
if not sessions:
    robot.config["SESSION_STORAGE"] = False


@robot.text
def echo(message):
    return "你说：" + message.content


app = robot.wsgi
