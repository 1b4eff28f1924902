"""Text helpers shared by the identity and school services: width folding and rendering of replies.

Students type on phone keyboards that switch between half- and full-width forms, paste from PDFs
and chat apps that carry zero-width characters, and write traditional characters. Every service
that reads free text folds these the same way through this module.
"""

from __future__ import annotations

import functools
import re

from bot.render import Renderer
from dialogs.spec import Say

# U+FF01..U+FF5E are the full-width twins of ASCII 0x21..0x7E; U+3000 is the ideographic space.
_WIDTH = str.maketrans({**{chr(0xFF01 + i): chr(0x21 + i) for i in range(94)}, "\u3000": " "})
# Zero-width characters and variation selectors: invisible, and never part of a name or a number.
_INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_SPACES = re.compile(r"\s+")


def fold_width(text: str) -> str:
    """Full-width ASCII to half-width (``１２Ｘ`` → ``12X``) and drop invisible characters."""
    return _INVISIBLE.sub("", text.translate(_WIDTH))


def squeeze_spaces(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def drop_spaces(text: str) -> str:
    return _SPACES.sub("", text)


@functools.cache
def shared_renderer() -> Renderer:
    """One renderer for the pure services; the app may render the same ``Say`` with its own."""
    return Renderer()


def render(reply: Say) -> str:
    return shared_renderer().render(reply.template, **reply.variables)


class Explained:
    """Mixin for a result that may explain a problem to the student through ``reply``."""

    __slots__ = ()

    @property
    def reply(self) -> Say | None:
        raise NotImplementedError

    @property
    def message(self) -> str:
        """The rendered ``reply``: short Chinese text, or "" when there is nothing to explain."""
        reply = self.reply
        return render(reply) if reply else ""
