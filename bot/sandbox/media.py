"""What the WeChat client does before a photo message: put the file into WeChat's media store.

Only the local stand-in has such an endpoint (``POST /_stub/media``); real WeChat does this inside
the phone app. Used by ``gradbot send --image`` and the chat simulator.
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
from pathlib import Path

import aiohttp


async def upload_as_student(http: aiohttp.ClientSession, api_base: str, path: Path) -> str:
    """The media id the stand-in gives ``path``'s bytes (what arrives in the image message)."""
    if not api_base:
        raise ValueError("--image needs --api: the WeChat stand-in's URL (gradbot wechat-stub)")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    data = await asyncio.to_thread(path.read_bytes)
    async with http.post(f"{api_base.rstrip('/')}/_stub/media", data=io.BytesIO(data),
                         headers={"Content-Type": content_type}) as resp:
        body = await resp.json(content_type=None)
    if resp.status != 200 or "media_id" not in body:
        raise ValueError(f"the stand-in refused the upload: {body}")
    return str(body["media_id"])
