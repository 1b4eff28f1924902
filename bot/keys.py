"""Every aiohttp AppKey: the typed registry of the app's resources (no module globals)."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from aiohttp import web

from bot.config import Settings
from bot.metrics import Metrics
from bot.pipeline import FollowUps, Pipeline
from bot.render import Renderer
from bot.services.container import Services
from bot.services.payments.service import Payments
from bot.tasks import TaskSet
from storage.base import SessionStore

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
METRICS = web.AppKey("metrics", Metrics)
RENDERER = web.AppKey("renderer", Renderer)
STORE = web.AppKey("store", SessionStore)
PIPELINE = web.AppKey("pipeline", Pipeline)
TASKS = web.AppKey("tasks", TaskSet)
JOBS = web.AppKey("jobs", FollowUps)
SERVICES = web.AppKey("services", Services)
PAYMENTS = web.AppKey("payments", Payments)  # only while GRADBOT_PAY_MCHID is set (bot/web/pay.py)
PAY_HTTP = web.AppKey("pay_http", aiohttp.ClientSession)  # OAuth code exchange
