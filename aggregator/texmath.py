"""TeX math in Markdown: the four forms found, each formula turned into MathML.

Pure functions, no IO. A writer's formula is written as \\( \\) or $ $ (inline)
or \\[ \\] or $$ $$ (display), inside a paragraph or as a block of its own.
`math_plugin` teaches a markdown-it parser all four, so Markdown never touches
their TeX (no emphasis, escapes or links), and renders each formula as
presentation MathML (latex2mathml) with the TeX kept as its
`<annotation encoding="application/x-tex">`: no script or web font needed, and
copying the formula gives its TeX back. A formula latex2mathml cannot convert
stays as its TeX text, with its delimiters, and is recorded once in the
render's `env["math_problems"]` with its line.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from latex2mathml.converter import convert
from lxml import etree
from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin

#: the env key under which a render collects the formulas that did not convert
PROBLEMS = "math_problems"

#: token type -> (opening delimiter as written, display)
_INLINE_TYPES = {
    "math_inline": ("$", False),
    "math_inline_double": ("$$", True),
    "math_paren": ("\\(", False),
    "math_bracket": ("\\[", True),
}
_BLOCK_TYPES = {"math_block": ("$$", True), "math_bracket_block": ("\\[", True)}
CLOSE = {"\\(": "\\)", "\\[": "\\]", "$": "$", "$$": "$$"}


@dataclass(frozen=True)
class MathProblem:
    """A formula that did not convert to MathML: shown as its TeX instead."""

    line: int | None  # 1-based line in the Markdown source, when known
    tex: str  # with its delimiters, as written
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}formula {self.tex!r} shown as TeX ({self.reason})"


# -- TeX -> MathML ---------------------------------------------------------------

#: a TeX control word left in the output: a command latex2mathml did not know
_RAW_COMMAND = re.compile(r"\\[A-Za-z]")
_OPEN_MATH = re.compile(r"^<math\b[^>]*>")
#: standard TeX operators latex2mathml does not know, as ones it does
_ALIASES = re.compile(r"\\arg(?![A-Za-z])")


def _braces_balance(tex: str) -> bool:
    depth, i = 0, 0
    while i < len(tex):
        c = tex[i]
        if c == "\\":
            i += 2  # \{ \} \\ are not groups
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                return False
        i += 1
    return depth == 0


def tex_to_mathml(tex: str, display: bool) -> str | None:
    """`tex` (without delimiters) as a `<math>` element, its TeX kept in an
    annotation; None when it does not convert: latex2mathml raises, leaves a
    command it did not know, or writes something that is not well-formed XML,
    or the TeX's braces do not balance (latex2mathml accepts "\\frac{1}{2")."""
    return _convert(tex, display)[0]


# Every conversion goes through here, once per distinct formula and mode:
# a writer repeats formulas across posts, and excerpts repeat the post's.
@lru_cache(maxsize=8192)
def _convert(tex: str, display: bool) -> tuple[str | None, str]:
    source = tex.strip()
    if not source:
        return None, "empty formula"
    if not _braces_balance(source):
        return None, "unbalanced braces"
    try:
        tex_in = _ALIASES.sub(r"\\operatorname{arg}", source)
        out = convert(tex_in, display="block" if display else "inline")
    except Exception as e:  # latex2mathml raises many kinds on bad TeX
        return None, f"{type(e).__name__}: {e}"
    try:
        root = etree.fromstring(out)
    except etree.XMLSyntaxError:
        return None, "not well-formed MathML"
    if any(_RAW_COMMAND.search(str(t)) for t in root.itertext()):
        return None, "unknown command"
    inner = _OPEN_MATH.sub("", out, count=1).removesuffix("</math>")
    if len(root) != 1 or etree.QName(root[0]).localname != "mrow":
        inner = f"<mrow>{inner}</mrow>"
    mode = "block" if display else "inline"
    return (
        f'<math display="{mode}"><semantics>{inner}'
        f'<annotation encoding="application/x-tex">{html.escape(source, quote=False)}'
        "</annotation></semantics></math>"
    ), ""


def render_formula(tex: str, opener: str, display: bool) -> tuple[str, MathProblem | None]:
    """HTML for one formula: its MathML, or, when it does not convert, its TeX
    with its delimiters as text in a span of class "math" (with the problem)."""
    mathml, reason = _convert(tex, display) if tex.strip() else (None, "empty formula")
    if mathml is not None:
        return mathml, None
    written = f"{opener}{tex}{CLOSE[opener]}"
    cls = "math display" if display else "math inline"
    shown = f'<span class="{cls}">{html.escape(written, quote=False)}</span>'
    return shown, MathProblem(None, written, reason)


# -- Markdown ----------------------------------------------------------------------


def _closing(src: str, start: int, end: int, close: str) -> int:
    """Offset of the `close` delimiter (\\) or \\]) at or after `start`, skipping
    TeX's backslash pairs ("\\\\" is a line break, not the start of "\\]"); -1."""
    i = start
    while i < end - 1:
        if src[i] == "\\":
            if src[i + 1] == close[1]:
                return i
            i += 2
            continue
        i += 1
    return -1


def _bracket_rule(opener: str, token_type: str) -> Callable[[StateInline, bool], bool]:
    """An inline rule for \\( \\) or \\[ \\], anywhere in a paragraph, across lines."""
    close = CLOSE[opener]

    def rule(state: StateInline, silent: bool) -> bool:
        pos = state.pos
        if not state.src.startswith(opener, pos):
            return False
        end = _closing(state.src, pos + 2, state.posMax, close)
        if end < 0 or not state.src[pos + 2 : end].strip():
            return False
        if not silent:
            token = state.push(token_type, "math", 0)
            token.content = state.src[pos + 2 : end]
            token.markup = opener
        state.pos = end + 2
        return True

    return rule


def _bracket_block(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """\\[ at the start of a block, closed by \\] at the end of a line: a display
    block whose lines Markdown never reads (a "- x" inside stays TeX). A closing
    \\] with text after it on its line leaves the block to the paragraph rules."""
    begin = state.bMarks[start_line] + state.tShift[start_line]
    if state.sCount[start_line] - state.blkIndent >= 4:
        return False  # an indented code block
    if not state.src.startswith("\\[", begin):
        return False
    line = start_line
    pos = begin + 2
    while line < end_line:
        stop = state.eMarks[line]
        close = _closing(state.src, pos, stop, "\\]")
        if close >= 0:
            if state.src[close + 2 : stop].strip():
                return False
            break
        line += 1
        if line >= end_line or state.isEmpty(line):
            return False  # no blank line inside display math, as in LaTeX
        pos = state.bMarks[line] + state.tShift[line]
    else:
        return False
    if silent:
        return True
    token = state.push("math_bracket_block", "math", 0)
    token.block = True
    token.content = state.src[begin + 2 : close]
    token.markup = "\\["
    token.map = [start_line, line + 1]
    state.line = line + 1
    return True


def _open_at(src: str, i: int, end: int, closer: str | None) -> tuple[int, str | None]:
    """Scan `src[i:end]` for \\( \\[ $$ and their closers, starting inside a
    formula that awaits `closer` (None: outside any); where the scan stopped
    and the closer still awaited."""
    while i < end:
        c = src[i]
        if closer is None:
            if c == "\\":
                nxt = src[i + 1 : i + 2]
                if nxt in ("(", "["):
                    closer = "\\)" if nxt == "(" else "\\]"
                i += 2
            elif c == "$" and src.startswith("$$", i):
                closer = "$$"
                i += 2
            else:
                i += 1
        elif c == "\\":
            if closer[0] == "\\" and src[i + 1 : i + 2] == closer[1]:
                closer = None
            i += 2
        elif c == "$" and closer == "$$" and src.startswith("$$", i):
            closer = None
            i += 2
        else:
            i += 1
    return i, closer


def _unless_math_open(rule: Callable[..., bool]) -> Callable[..., bool]:
    """Wrap a block rule that may end a paragraph so that it does not while
    a formula opened in the paragraph is still open: "\\(a\\n+ b\\)" is one
    formula, not a paragraph and a list. The scan of each paragraph is kept
    on the state and resumed, so a long paragraph is read once."""

    def guarded(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
        if not rule(state, start_line, end_line, silent):
            return False
        if not silent or state.parentType != "paragraph" or start_line <= state.line:
            return True
        memo: dict[int, tuple[int, str | None]] = state.__dict__.setdefault("_math_scan", {})
        first = state.bMarks[state.line] + state.tShift[state.line]
        pos, closer = memo.get(first, (first, None))
        pos, closer = _open_at(state.src, pos, state.bMarks[start_line], closer)
        memo[first] = (pos, closer)
        return closer is None

    return guarded


_SETEXT_UNDERLINE = re.compile(r"[ ]{0,3}(=+|-+)[ \t]*$")


def _unless_math_in_heading(rule: Callable[..., bool]) -> Callable[..., bool]:
    """Wrap the setext heading rule so that a line of "=" or "-" inside an
    open formula ("\\(x\n=\nx\\)") does not turn the lines above it into a
    heading: the formula is one, and the paragraph goes on."""

    def guarded(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
        first = state.bMarks[start_line] + state.tShift[start_line]
        line = start_line + 1
        while line < end_line and line < start_line + 1000:  # bounded, as the rule itself is
            text = state.src[state.bMarks[line] : state.eMarks[line]]
            if not text.strip():
                break
            if _SETEXT_UNDERLINE.match(text):
                if _open_at(state.src, first, state.bMarks[line], None)[1] is not None:
                    return False
                break
            line += 1
        return rule(state, start_line, end_line, silent)

    return guarded


def _one_dollar_block_per_line(rule: Callable[..., bool]) -> Callable[..., bool]:
    """Wrap dollarmath's block rule so that a line holding two formulas,
    "$$x$$ and $$y$$", is a paragraph with two formulas, not one block whose
    TeX is "x$$ and $$y"."""

    def guarded(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
        first = state.bMarks[start_line] + state.tShift[start_line]
        line = state.src[first : state.eMarks[start_line]].rstrip()
        if line.startswith("$$") and "$$" in line[2:-2]:
            return False
        return rule(state, start_line, end_line, silent)

    return guarded


def _not_across_code(rule: Callable[[StateInline, bool], bool]) -> Any:
    """Wrap an inline math rule so that a match spanning a backtick is refused:
    inline code binds tighter than math ("$10 and `$PATH`" is no math span)."""

    def guarded(state: StateInline, silent: bool) -> bool:
        start = state.pos
        if not rule(state, True):
            return False
        end, state.pos = state.pos, start
        if "`" in state.src[start:end]:
            return False
        if silent:
            state.pos = end
            return True
        return rule(state, False)

    return guarded


def _number_lines(state: StateCore) -> None:
    """Give each inline formula the source line it starts on (for problems):
    its paragraph's first line plus the line breaks before it."""
    for block in state.tokens:
        if block.type != "inline" or not block.map or not block.children:
            continue
        line = block.map[0]
        for child in block.children:
            if child.type in _INLINE_TYPES:
                child.map = [line, line + 1]
            if child.type in ("softbreak", "hardbreak"):
                line += 1
            line += child.content.count("\n") if child.type != "text" else 0


def _render(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    if token.type in _BLOCK_TYPES:
        opener, display = _BLOCK_TYPES[token.type]
    else:
        opener, display = _INLINE_TYPES[token.type]
    out, problem = render_formula(token.content, opener, display)
    if problem is not None and isinstance(env, dict):
        line = token.map[0] + 1 if token.map else None
        problems: list[MathProblem] = env.setdefault(PROBLEMS, [])
        if all(p.tex != problem.tex for p in problems):
            problems.append(MathProblem(line, problem.tex, problem.reason))
    return out + ("\n" if token.block else "")


def math_plugin(md: MarkdownIt) -> None:
    """The four math forms for a markdown-it parser, rendered as MathML."""
    # Pandoc's rule for dollars: no space just inside them, no digit just
    # outside, so "$HOME and $PATH" or "costs $5 or $10" stay plain text.
    md.use(
        dollarmath_plugin,
        allow_space=False,
        allow_digits=False,
        allow_labels=False,
        allow_blank_lines=False,
        double_inline=True,
    )
    md.inline.ruler.before("escape", "math_paren", _bracket_rule("\\(", "math_paren"))
    md.inline.ruler.before("escape", "math_bracket", _bracket_rule("\\[", "math_bracket"))
    md.block.ruler.before(
        "fence",
        "math_bracket_block",
        _bracket_block,
        {"alt": ["paragraph", "reference", "blockquote", "list"]},
    )
    for rule in md.inline.ruler.__rules__:
        if rule.name in _INLINE_TYPES:
            rule.fn = _not_across_code(rule.fn)
    md.inline.ruler.__cache__ = None
    for block_rule in md.block.ruler.__rules__:
        if "paragraph" in block_rule.alt and block_rule.name != "math_bracket_block":
            block_rule.fn = _unless_math_open(block_rule.fn)
        elif block_rule.name == "lheading":
            block_rule.fn = _unless_math_in_heading(block_rule.fn)
        if block_rule.name == "math_block":
            block_rule.fn = _one_dollar_block_per_line(block_rule.fn)
    md.block.ruler.__cache__ = None
    md.core.ruler.after("inline", "math_lines", _number_lines)
    for name in (*_INLINE_TYPES, *_BLOCK_TYPES):
        md.add_render_rule(name, _render)


def formulas(md: MarkdownIt, source: str) -> list[tuple[str, bool]]:
    """Every formula in a Markdown `source` as (TeX as written between its
    delimiters, display), in order, as `md` (with `math_plugin`) parses it."""
    out: list[tuple[str, bool]] = []

    def walk(tokens: Sequence[Token]) -> None:
        for token in tokens:
            if token.type in _BLOCK_TYPES:
                out.append((token.content, True))
            elif token.type in _INLINE_TYPES:
                out.append((token.content, _INLINE_TYPES[token.type][1]))
            if token.children:
                walk(token.children)

    walk(md.parse(source))
    return out
