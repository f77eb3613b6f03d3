"""Formulas in plain text (excerpts), shown as MathML on pages and as PNG images in the email.

Pure functions, no IO. An excerpt is text: a post's formulas appear in it as
their TeX with delimiters (\\( \\), \\[ \\], $ $, $$ $$; see text.text_of).
`split_math` finds them; `mathml_html` shows each as MathML (aggregator.texmath)
for the web pages; `email_html` shows each as an `<img>` of a PNG drawn by
matplotlib's mathtext (no TeX installation, no browser), since Gmail and
Outlook drop MathML. The images are linked by absolute URL (Gmail shows no
`data:` images) and named by the formula, so one formula is one file;
`email_images` reads an email's HTML back into those files' bytes, for
whoever writes them. A formula mathtext cannot draw stays TeX text, in a
`span.math-tex`, and `email_images` names it.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from lxml import html as lxml_html
from matplotlib import rc_context
from matplotlib.font_manager import FontProperties
from matplotlib.mathtext import MathTextParser
from PIL import Image

from aggregator.texmath import CLOSE, tex_to_mathml

#: the email's excerpt text size in CSS px (templates/email.html .excerpt)
FONT_PX = 15
#: device pixels per CSS pixel: images are drawn at 2x for high-density screens
SCALE = 2
#: the white outline around the dark glyphs, in device pixels: the formula
#: reads on a light background and, outlined, on a dark-mode one too
HALO = 3
INK = 0x1D  # the excerpt's text colour, as a grey (#1d1d1d ~ #1d1f21)


@dataclass(frozen=True)
class Formula:
    """One formula in a text: its TeX between the delimiters, as `written`."""

    tex: str
    display: bool
    written: str  # with its delimiters, as in the text


@dataclass(frozen=True)
class MathImage:
    """A formula drawn as a PNG; sizes in CSS pixels (the PNG is SCALE times larger)."""

    png: bytes
    width: int
    height: int
    depth: int  # how far the image reaches below the text's baseline


# -- finding formulas in text --------------------------------------------------------


def _closing(text: str, start: int, close: str) -> int:
    """Offset of \\) or \\] at or after `start`, skipping TeX's backslash pairs; -1."""
    i = start
    while i < len(text) - 1:
        if text[i] == "\\":
            if text[i + 1] == close[1]:
                return i
            i += 2
            continue
        i += 1
    return -1


def _dollar_close(text: str, start: int) -> int:
    """The closing $ of a $ $ formula opened before `start` (Pandoc's rule: no
    space just inside, no digit just after the closing one); -1."""
    if start >= len(text) or text[start].isspace():
        return -1
    i = start
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "$":
            after = text[i + 1 : i + 2]
            if not text[i - 1].isspace() and not after.isdigit() and i > start:
                return i
            return -1
        i += 1
    return -1


def split_math(text: str) -> list[str | Formula]:
    """`text` as its runs of plain text and its formulas, in order. A delimiter
    with no closing one (an excerpt cut short) is text."""
    out: list[str | Formula] = []
    plain, i = 0, 0
    while i < len(text):
        c = text[i]
        found: tuple[Formula, int] | None = None
        if c == "\\" and text[i + 1 : i + 2] in ("(", "["):
            opener = text[i : i + 2]
            end = _closing(text, i + 2, CLOSE[opener])
            if end > i + 2 and text[i + 2 : end].strip():
                found = Formula(text[i + 2 : end], opener == "\\[", text[i : end + 2]), end + 2
        elif c == "\\":
            i += 2  # an escaped character, \$ included
            continue
        elif text.startswith("$$", i):
            end = text.find("$$", i + 2)
            if end > i + 2 and text[i + 2 : end].strip():
                found = Formula(text[i + 2 : end], True, text[i : end + 2]), end + 2
        elif c == "$" and not text[i - 1 : i].isdigit():
            end = _dollar_close(text, i + 1)
            if end > 0:
                found = Formula(text[i + 1 : end], False, text[i : end + 1]), end + 1
        if found is None:
            i += 1
            continue
        if i > plain:
            out.append(text[plain:i])
        out.append(found[0])
        plain = i = found[1]
    if plain < len(text):
        out.append(text[plain:])
    return out


# -- pages: MathML ---------------------------------------------------------------------


def mathml_html(text: str) -> str:
    """`text` as HTML, each formula as MathML with its TeX annotation (or, when
    it does not convert, its TeX as text)."""
    out = []
    for part in split_math(text):
        if isinstance(part, str):
            out.append(html.escape(part, quote=False))
            continue
        mathml = tex_to_mathml(part.tex, part.display)
        out.append(mathml if mathml is not None else html.escape(part.written, quote=False))
    return "".join(out)


# -- the email: PNG images ---------------------------------------------------------------


def image_name(formula: Formula) -> str:
    """The file name of a formula's image: the same formula, the same file."""
    key = f"{'display' if formula.display else 'inline'}\0{formula.tex.strip()}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:20] + ".png"


#: standard TeX mathtext does not know, as what it does (size hints of
#: delimiters dropped: mathtext sizes none but \\left \\right)
_ALIASES = (
    (re.compile(r"\\[Bb]igg?[lrm]?(?![A-Za-z])"), ""),
    (re.compile(r"\\le(?![A-Za-z])"), r"\\leq"),
    (re.compile(r"\\ge(?![A-Za-z])"), r"\\geq"),
    (re.compile(r"\\[lr]Vert(?![A-Za-z])"), r"\\Vert"),
    (re.compile(r"\\[td]frac(?![A-Za-z])"), r"\\frac"),
)


@lru_cache(maxsize=4096)
def render_png(tex: str, display: bool) -> MathImage | None:
    """A formula drawn by matplotlib's mathtext as a PNG (grey and alpha: dark
    glyphs in a white outline on a transparent ground), or None when mathtext
    cannot draw it (a command or environment it does not know)."""
    source = " ".join(tex.split())  # mathtext reads one line
    if not source:
        return None
    for pattern, alias in _ALIASES:
        source = pattern.sub(alias, source)
    try:
        with rc_context({"mathtext.fontset": "cm"}):
            parsed = MathTextParser("agg").parse(
                f"${source}$", dpi=72 * SCALE, prop=FontProperties(size=FONT_PX)
            )
    except Exception:  # mathtext raises ValueError and pyparsing's kinds on TeX it cannot draw
        return None
    coverage = np.asarray(parsed.image, dtype=np.float64) / 255.0
    if coverage.size == 0 or not coverage.any():
        return None
    rows, cols = coverage.shape
    # Pad by the halo, and to whole CSS pixels, so the sizes stated are exact.
    bottom = HALO + (-(rows + 2 * HALO)) % SCALE
    right = HALO + (-(cols + 2 * HALO)) % SCALE
    glyph = np.pad(coverage, ((HALO, bottom), (HALO, right)))
    halo = np.zeros_like(glyph)
    for dy in range(-HALO, HALO + 1):
        for dx in range(-HALO, HALO + 1):
            if dy * dy + dx * dx <= HALO * HALO:
                halo = np.maximum(halo, np.roll(np.roll(glyph, dy, axis=0), dx, axis=1))
    alpha = glyph + halo * (1.0 - glyph)
    grey = np.where(
        alpha > 0, (INK * glyph + 255.0 * halo * (1.0 - glyph)) / np.maximum(alpha, 1e-9), 0
    )
    pixels = np.stack([grey, alpha * 255.0], axis=-1).round().astype(np.uint8)
    buffer = io.BytesIO()
    # (h, w, 2) uint8: Pillow's "LA", grey and alpha
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    height, width = pixels.shape[:2]
    depth = round(parsed.depth) + bottom
    return MathImage(
        png=buffer.getvalue(),
        width=width // SCALE,
        height=height // SCALE,
        depth=round(depth / SCALE),
    )


def email_html(text: str, image_url: str) -> str:
    """`text` as HTML for the email: each formula as an `<img>` of its PNG at
    `image_url` + its name, `alt` its TeX as written; a formula mathtext cannot
    draw (or any, when `image_url` is empty) as its TeX in a span.math-tex."""
    out = []
    for part in split_math(text):
        if isinstance(part, str):
            out.append(html.escape(part, quote=False))
            continue
        image = render_png(part.tex, part.display) if image_url else None
        if image is None:
            out.append(f'<span class="math-tex">{html.escape(part.written, quote=False)}</span>')
            continue
        place = (
            "display:block;margin:6px 0;" if part.display else f"vertical-align:-{image.depth}px;"
        )
        out.append(
            f'<img class="math" src="{html.escape(image_url + image_name(part))}"'
            f' alt="{html.escape(part.written)}" width="{image.width}" height="{image.height}"'
            f' style="{place}border:0;outline:none;text-decoration:none;">'
        )
    return "".join(out)


def email_images(email: str, image_dir: str) -> tuple[dict[str, bytes], list[str]]:
    """The images an email's HTML links in a directory ending in `image_dir`
    ("issues/<key>/math/"), as {file name: PNG bytes} drawn again from their
    `alt` TeX, and the formulas it shows as TeX because they could not be
    drawn (each once)."""
    if "math" not in email:
        return {}, []
    root = lxml_html.document_fromstring(email)
    images: dict[str, bytes] = {}
    for img in root.iter("img"):
        src = img.get("src") or ""
        at = src.rfind("/" + image_dir)
        if "math" not in (img.get("class") or "").split() or at < 0:
            continue
        parts = split_math(img.get("alt") or "")
        if len(parts) != 1 or isinstance(parts[0], str):
            continue
        image = render_png(parts[0].tex, parts[0].display)
        if image is not None:
            images[src[at + 1 + len(image_dir) :]] = image.png
    shown_as_tex = [
        "".join(str(t) for t in span.itertext())
        for span in root.iter("span")
        if "math-tex" in (span.get("class") or "").split()
    ]
    return images, list(dict.fromkeys(shown_as_tex))
