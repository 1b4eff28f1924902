"""Texts without variables are rendered once; anything with variables is rendered every time."""

from __future__ import annotations

from bot.render import Renderer


def test_a_text_without_variables_is_rendered_once_and_kept() -> None:
    renderer = Renderer()
    renderer.add_templates({"t/fixed.txt.j2": "第一版"})
    assert renderer.render("t/fixed") == "第一版"
    renderer._inline["t/fixed.txt.j2"] = "改过了"  # behind the renderer's back, and jinja2 forgets too:
    renderer.env.cache.clear()  # type: ignore[union-attr]
    assert renderer.render("t/fixed") == "第一版"  # the kept text, not a second render


def test_registering_templates_forgets_the_kept_texts() -> None:
    renderer = Renderer()
    renderer.add_templates({"t/fixed.txt.j2": "第一版"})
    assert renderer.render("t/fixed") == "第一版"
    renderer.env.cache.clear()  # type: ignore[union-attr]
    renderer.add_templates({"t/fixed.txt.j2": "第二版"})
    assert renderer.render("t/fixed") == "第二版"


def test_renders_with_variables_are_never_kept() -> None:
    renderer = Renderer()
    renderer.add_templates({"t/hello.txt.j2": "你好，{{ name | mask_name }}"})
    assert renderer.render("t/hello", name="张三丰") == "你好，张**"
    assert renderer.render("t/hello", name="李四") == "你好，李*"
    assert renderer._fixed == {}
