"""Code blocks highlighted on the server (Pygments): no JavaScript on the page.

A post's code blocks come out of Markdown and the sanitizer as
`<pre><code class="language-X">escaped text</code></pre>`. Each block whose
language Pygments knows becomes `<pre class="highlight">` with the token
classes Pygments gives; a block with no language, an unknown one, or markup
inside is left exactly as it was. The colours are two Pygments styles in one
stylesheet: a light one, and a dark one under prefers-color-scheme: dark.
"""

from __future__ import annotations

import html
import re
from functools import cache

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

#: the styles, light and dark: both keep the page's own code background
LIGHT_STYLE = "default"
DARK_STYLE = "github-dark"
SCOPE = ".highlight"
_RESET = "color: inherit; font-weight: inherit; font-style: inherit; border: 0;"

_BLOCK = re.compile(r'<pre><code class="language-([\w+#.-]+)">([^<]*)</code></pre>')


def highlight_code(content_html: str) -> tuple[str, bool]:
    """`content_html` with its code blocks highlighted, and whether any was."""
    found = False

    def one(m: re.Match[str]) -> str:
        nonlocal found
        try:
            lexer = get_lexer_by_name(m.group(1))
        except ClassNotFound:
            return m.group(0)
        found = True
        tokens = highlight(html.unescape(m.group(2)), lexer, _formatter())
        return f'<pre class="highlight"><code class="language-{m.group(1)}">{tokens}</code></pre>'

    return _BLOCK.sub(one, content_html), found


@cache
def _formatter() -> HtmlFormatter[str]:
    return HtmlFormatter(nowrap=True, style=LIGHT_STYLE)


@cache
def code_css() -> str:
    """The token colours: the light style, then the dark one for dark mode."""
    light: list[str] = HtmlFormatter(style=LIGHT_STYLE).get_token_style_defs(SCOPE)  # type: ignore[no-untyped-call]
    dark: list[str] = HtmlFormatter(style=DARK_STYLE).get_token_style_defs(SCOPE)  # type: ignore[no-untyped-call]
    # in dark mode, what the light style set and the dark one does not is reset first
    reset = f"{SCOPE} [class] {{ {_RESET} }}"
    return "\n".join(
        [*_plain(light), "@media (prefers-color-scheme: dark) {", reset, *_plain(dark), "}"]
    )


def _plain(rules: list[str]) -> list[str]:
    """Rules without their /* Token.Name */ comments, and without backgrounds
    (a block keeps the page's own code background in both schemes)."""
    out = []
    for rule in rules:
        rule = re.sub(r"\s*/\*.*?\*/", "", rule)
        rule = re.sub(r"background-color: #[0-9A-Fa-f]+;?\s*", "", rule)
        if not re.search(r"\{\s*\}", rule):
            out.append(rule)
    return out
