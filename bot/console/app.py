"""The console sub-app: routes, middlewares, and where it hangs off the main app."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from aiohttp import web

from bot.console import (
    notice,
    views_auth,
    views_broadcasts,
    views_dashboard,
    views_documents,
    views_reviews,
    views_students,
    views_windows,
)
from bot.console.base import errors_middleware, session_middleware
from bot.console.state import console_state

STATIC = Path(__file__).with_name("static")


def create_console(parent: web.Application) -> web.Application:
    app = web.Application(middlewares=[errors_middleware, session_middleware])
    # On the main app's cleanup_ctx, after its own resources: opened after them and closed before them. As the
    # sub-app's own it would close last, so the ticker could still read a database already disposed (and leak
    # the connection it opened).
    parent.cleanup_ctx.append(partial(console_state, app=app))
    add = app.router.add_route
    add("GET", "/login", views_auth.login_form, name="login")
    add("POST", "/login", views_auth.login)
    add("POST", "/logout", views_auth.logout)
    add("GET", "/", views_dashboard.dashboard)
    add("GET", "/funnel.csv", views_dashboard.funnel_csv)
    add("GET", "/reviews", views_reviews.queue)
    add("POST", "/reviews/next", views_reviews.take_next)
    add("GET", r"/reviews/{review_id}", views_reviews.detail)
    add("POST", r"/reviews/{review_id}", views_reviews.decide)
    add("GET", r"/reviews/{review_id}/photo/{kind}", views_reviews.photo)
    add("GET", r"/reviews/{review_id}/document/{n}", views_documents.document)
    add("GET", "/students", views_students.search)
    add("GET", "/students/{openid}", views_students.show)
    add("GET", "/broadcasts", views_broadcasts.index)
    add("GET", "/broadcasts/new", views_broadcasts.compose)
    add("POST", "/broadcasts", views_broadcasts.submit)
    add("GET", r"/broadcasts/{broadcast_id}", views_broadcasts.show)
    add("GET", r"/broadcasts/{broadcast_id}/status.json", views_broadcasts.status)
    add("POST", r"/broadcasts/{broadcast_id}/{action}", views_broadcasts.control_view)
    add("GET", "/windows", views_windows.index)
    add("POST", "/windows", views_windows.save)
    app.router.add_static("/static/", STATIC)
    return app


def mount(app: web.Application) -> None:
    """Add the console under /console/ and the students' result page to the main app."""
    app.add_subapp("/console/", create_console(app))
    app.router.add_get("/notice/{token}", notice.notice)
