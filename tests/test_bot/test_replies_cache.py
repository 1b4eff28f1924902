"""A cached reply keeps only the fields that are set, and reads back equal."""

from __future__ import annotations

import json

from bot.wechat import replies
from bot.wechat.replies import OutMessage


def test_cached_replies_keep_only_the_fields_set() -> None:
    messages = [OutMessage.text("你好"), OutMessage.news("标题", "说明", "https://example.com/p")]
    raw = replies.dumps(messages)
    assert json.loads(raw) == [{"kind": "text", "content": "你好"},
                               {"kind": "news", "title": "标题", "description": "说明",
                                "url": "https://example.com/p"}]
    assert replies.loads(raw) == messages
