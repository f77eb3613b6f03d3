"""The email's text wrapping: the linear form gives what the plain definition
gives, and a title of megabytes without a space costs a fraction of a second."""

from __future__ import annotations

import re
import time
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.render.email import TEXT_WIDTH, wrap

# -- the plain definition: render/email.py's wrap until it was made linear ------
# (a token per character, glued back one concatenation at a time, and a URL
# pattern tried at every position of a run: quadratic in a run's length)

_TOKEN = re.compile(r"\S+://\S+|\s+|[^\s]")
_CLOSING = set("，。、；：？！）」』》〉】〕…·％")


def _width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _is_wide(tok: str) -> bool:
    return len(tok) == 1 and _width(tok) == 2


def wrap_definition(text: str, indent: str = "", subsequent: str | None = None) -> str:
    subsequent = indent if subsequent is None else subsequent
    words: list[str] = []
    for m in _TOKEN.finditer(text.strip()):
        tok = m.group(0)
        if tok.isspace():
            words.append(" ")
        elif not words or words[-1] == " ":  # noqa: SIM114 (as it was written)
            words.append(tok)
        elif _is_wide(tok) and tok not in _CLOSING:  # noqa: SIM114
            words.append(tok)
        elif _is_wide(words[-1][-1]) and tok.isalnum():
            words.append(tok)
        else:
            words[-1] += tok
    lines: list[str] = []
    line, col = indent, len(indent)
    pending_space = False
    for w in words:
        if w == " ":
            pending_space = True
            continue
        width = sum(_width(c) for c in w)
        sep = 1 if pending_space and line.strip() else 0
        if col + sep + width > TEXT_WIDTH and line.strip():
            lines.append(line.rstrip())
            line, col, sep = subsequent, len(subsequent), 0
        line += " " * sep + w
        col += sep + width
        pending_space = False
    if line.strip():
        lines.append(line.rstrip())
    return "\n".join(lines)


PIECES = [*"ab é数学，。）《_-:/\\\t\n\u3000１", "://", "https://", "x://y", "a" * 80]
texts = st.lists(st.sampled_from(PIECES), max_size=120).map("".join)


@settings(max_examples=500)
@given(texts, st.sampled_from(["", "   ", "> "]), st.sampled_from([None, "", "   ", "· "]))
def test_wrap_is_the_plain_definition(text: str, indent: str, subsequent: str | None) -> None:
    assert wrap(text, indent, subsequent) == wrap_definition(text, indent, subsequent)


def test_a_title_of_megabytes_without_a_space_wraps_in_linear_time() -> None:
    # 60 kB took 15 s; 9 MB never ended, on every build.
    started = time.monotonic()
    assert wrap("T" * 9_000_000, "", "   ") == "T" * 9_000_000
    url = "https://h.example/" + "a" * 3_000_000
    assert wrap(f"see {url} now", "   ") == f"   see\n   {url}\n   now"
    cjk = wrap("学" * 1_000_000).split("\n")
    assert time.monotonic() - started < 10
    assert {len(line) for line in cjk[:-1]} == {TEXT_WIDTH // 2}
    assert sum(map(len, cjk)) == 1_000_000
