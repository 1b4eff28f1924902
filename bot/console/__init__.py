"""The staff console (``/console/``): sign-in, dashboard, review queue, student lookup, broadcasts,
procedure windows; and the students' review-result page (``/notice/{token}``). docs/console.md.

``bot.console.app.mount`` adds it to the main app; this package file imports nothing, so the CLI can
use ``bot.console.auth`` without loading the web app.
"""
