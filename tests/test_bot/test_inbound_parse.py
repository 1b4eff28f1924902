"""The fast path for text messages gives exactly what the wechatpy path gives, or steps aside."""

from __future__ import annotations

import re
from xml.parsers.expat import ExpatError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy import parse_message

from bot.wechat.crypto import CallbackRejected
from bot.wechat.inbound import Inbound, _from_wechatpy, _plain_text, parse_inbound, sanitize
from bot.wechat.replies import cdata

HEAD = "<ToUserName><![CDATA[gh_abc]]></ToUserName><FromUserName><![CDATA[oStudent0000000000000000001]]></FromUserName>"


def text_xml(content: str = "<![CDATA[你好]]>", *, msg_id: str = "<MsgId>11234560000000001</MsgId>",
             created: str = "<CreateTime>1732320000</CreateTime>", msg_type: str = "<![CDATA[text]]>",
             head: str = HEAD) -> str:
    return f"<xml>{head}{created}<MsgType>{msg_type}</MsgType><Content>{content}</Content>{msg_id}</xml>"


def by_wechatpy(xml: str) -> Inbound | str:
    """What parse_inbound did before the fast path existed."""
    try:
        return _from_wechatpy(parse_message(sanitize(xml)))
    except (CallbackRejected, ExpatError, ValueError, KeyError, TypeError):
        return "CallbackRejected"


def by_us(xml: str) -> Inbound | str:
    try:
        return parse_inbound(xml)
    except CallbackRejected as exc:
        return type(exc).__name__


ORDINARY = [
    text_xml(),
    text_xml("<![CDATA[  查询 进度 \n]]>"),  # wechatpy (xmltodict) strips surrounding whitespace
    text_xml(""),
    text_xml("<![CDATA[]]>"),
    text_xml("<![CDATA[😀 表情 \u3000]]>"),
    text_xml(msg_id=""),  # no MsgId: 0
    text_xml(msg_id="<MsgId>0000123</MsgId>"),
    text_xml(msg_type="<![CDATA[TEXT]]>"),
    text_xml(created="<CreateTime>0</CreateTime>"),
    text_xml(head="<FromUserName><![CDATA[oOnlySender00000000000000001]]></FromUserName>"),  # no ToUserName
    "<xml>\n  " + re.sub(r"(</\w+>)", "\\1\n  ", text_xml()[5:-6]) + "\n</xml>\n",  # indented, as in WeChat's docs
    text_xml("<![CDATA[a]b]]c]>d <x> & ]]>"),  # brackets and markup inside CDATA
]

UNUSUAL = [
    text_xml("a &lt;b&gt; &amp; c"),  # entities: expat decodes them
    text_xml("<![CDATA[x]]]]><![CDATA[>y]]>"),  # a split CDATA carrying "]]>"
    text_xml("plain words"),  # text outside CDATA
    text_xml(head="<FromUserName>oOnlySender00000000000000001</FromUserName>"),
    text_xml("<![CDATA[line\r\nbreak]]>"),  # expat turns CRLF into LF, even inside CDATA
    text_xml("<![CDATA[x\uffffy]]>"),  # a character XML does not allow: refused by expat
    text_xml().replace("<Content>", "<Content >"),
    text_xml() + "<!-- trailing -->",
    text_xml("<b>nested</b>"),
    text_xml(msg_id="<MsgId>12a</MsgId>"),
    text_xml(msg_id="<MsgId></MsgId>"),
    text_xml(msg_id="<MsgId>123456789012345678901</MsgId>"),
    text_xml(created=""),
    text_xml(created="<CreateTime>-5</CreateTime>"),
    text_xml(created="<CreateTime>١٢٣</CreateTime>"),  # digits, but not ASCII ones
    text_xml(head=HEAD + "<Content>twice</Content>"),
    text_xml(head=""),
    text_xml("x<!-- a comment -->y"),
    text_xml(msg_type="<![CDATA[image]]>"),
    '<xml a="1">' + text_xml()[5:],
    text_xml().replace("<Content>", '<Content lang="zh">'),
    " " + text_xml(),
    "<xml></xml>",
    "<xml>" + HEAD + "<CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event>subscribe</Event></xml>",
]


@pytest.mark.parametrize("xml", ORDINARY)
def test_ordinary_text_messages_take_the_fast_path_and_match_wechatpy(xml: str) -> None:
    fast = _plain_text(xml)
    assert fast is not None
    assert fast == by_wechatpy(xml)


@pytest.mark.parametrize("xml", UNUSUAL)
def test_unusual_messages_go_through_wechatpy_with_the_same_result(xml: str) -> None:
    assert _plain_text(xml) is None
    assert by_us(xml) == by_wechatpy(xml)


def test_broken_xml_is_still_refused_as_malformed() -> None:
    with pytest.raises(CallbackRejected) as info:
        parse_inbound(text_xml()[:-3])
    assert info.value.reason == "malformed"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("a]>[<&!-CDAT \t\n\r\u3000你\x01\ufffe"), max_size=40))
def test_any_content_in_cdata_reads_as_wechatpy_reads_it(content: str) -> None:
    xml = text_xml(cdata(content))
    fast = _plain_text(sanitize(xml))
    if fast is not None:
        assert fast == by_wechatpy(xml)
    assert by_us(xml) == by_wechatpy(xml)
