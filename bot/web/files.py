"""``GET /files/{token}``: a photo file by a sealed, short-lived link (never by a guessable id).

The token names a content hash and expires; it carries no openid or other personal data. WeChat
recompresses images in chat, so students get the exact fixed file here.
"""

from __future__ import annotations

from aiohttp import web

from bot import keys
from bot.services.payments.links import TokenExpired, TokenInvalid


async def get_file(request: web.Request) -> web.StreamResponse:
    services = request.app[keys.SERVICES]
    try:
        claims = services.sealer.open("file", request.match_info["token"], request.app[keys.CLOCK]())
        data = services.files.get(str(claims["d"]))
    except TokenExpired:
        return web.Response(status=410, text="链接已过期，请回到公众号重新获取。", content_type="text/plain")
    except (TokenInvalid, KeyError, ValueError, FileNotFoundError):
        return web.Response(status=404, text="文件不存在。", content_type="text/plain")
    headers = {"Content-Disposition": 'attachment; filename="photo.jpg"', "Cache-Control": "private, no-store"}
    return web.Response(body=data, content_type="image/jpeg", headers=headers)


def add_file_routes(app: web.Application) -> None:
    app.router.add_get("/files/{token}", get_file)
