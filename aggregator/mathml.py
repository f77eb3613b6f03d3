"""MathML from others: what the sanitizer lets through of a followed feed's
math, and KaTeX or MathJax output reduced to its MathML (or its TeX).

Pure functions, no IO. A feed's KaTeX spans read as garbage without KaTeX's
CSS, and MathJax's scripts never run here: both are reduced to the MathML
(or TeX annotation) they carry, then the allowlist below decides what stays.
"""

from __future__ import annotations

import html
import re
from typing import Any

from lxml import etree
from lxml import html as lxml_html

from aggregator.texmath import tex_to_mathml

# -- MathML from others: what the sanitizer lets through -----------------------------

#: presentation MathML a feed's content may carry. Not annotation-xml (with
#: encoding="text/html" it is an HTML integration point, the door of the known
#: mutation-XSS payloads), not maction (it acts on clicks), not mglyph or
#: malignmark (they change how the parser reads what follows), no <style>.
MATHML_TAGS = frozenset(
    {
        "math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "ms", "mtext",
        "mspace", "msup", "msub", "msubsup", "mfrac", "msqrt", "mroot", "mover",
        "munder", "munderover", "mtable", "mtr", "mtd", "mstyle", "mpadded",
        "mphantom", "menclose",
    }
)  # fmt: skip
_TOKEN_ATTRS = frozenset({"mathvariant"})
_OPERATOR_ATTRS = frozenset(
    {"stretchy", "fence", "separator", "accent", "lspace", "rspace", "form", "largeop",
     "movablelimits", "symmetric", "minsize", "maxsize"}
)  # fmt: skip
_SCRIPT_ATTRS = frozenset({"accent", "accentunder"})
_TABLE_ATTRS = frozenset({"columnalign", "rowalign", "columnspacing", "rowspacing"})
_SIZE_ATTRS = frozenset({"width", "height", "depth", "lspace", "voffset"})
#: attributes per MathML element: nothing that holds a URL (no href, no
#: xlink:href, no src), no event handler, no style. An annotation's encoding
#: is only a label: <annotation> content is text whatever it says.
MATHML_ATTRS: dict[str, frozenset[str]] = {
    "math": frozenset({"display"}),
    "annotation": frozenset({"encoding"}),
    "mi": _TOKEN_ATTRS,
    "mn": _TOKEN_ATTRS,
    "mtext": _TOKEN_ATTRS,
    "ms": _TOKEN_ATTRS,
    "mo": _TOKEN_ATTRS | _OPERATOR_ATTRS,
    "mover": _SCRIPT_ATTRS,
    "munder": _SCRIPT_ATTRS,
    "munderover": _SCRIPT_ATTRS,
    "mfrac": frozenset({"linethickness"}),
    "mspace": _SIZE_ATTRS,
    "mpadded": _SIZE_ATTRS,
    "mstyle": frozenset({"displaystyle", "scriptlevel", "mathvariant"}),
    "mtable": _TABLE_ATTRS,
    "mtr": _TABLE_ATTRS,
    "mtd": _TABLE_ATTRS | {"columnspan", "rowspan"},
    "menclose": frozenset({"notation"}),
}


# -- KaTeX and MathJax output in feeds ----------------------------------------------

#: a fragment that may hold typeset math: only these pay for a parse
_RENDERED = re.compile(r"katex|math/tex|mjx-container|MathJax", re.IGNORECASE)
#: MathJax 2's wrappers: their MathML child (assistive MathML) if they have one
_MATHJAX_CLASSES = frozenset(
    {"MathJax", "MathJax_Display", "MathJax_SVG", "MathJax_SVG_Display", "MathJax_CHTML"}
)


def reduce_rendered_math(fragment: str) -> str:
    """KaTeX and MathJax output in a feed's HTML reduced to its MathML.

    KaTeX's styling spans (`span.katex-html`, unreadable without its CSS) go,
    its `span.katex-mathml` MathML stays; a MathJax 3 `mjx-container` or
    MathJax 2 wrapper becomes its assistive MathML, or nothing when it has
    none; a MathJax 2 `<script type="math/tex">` (`; mode=display`) becomes
    MathML converted from its TeX, or the TeX with delimiters as text. Any
    other fragment is returned as it is, unparsed.
    """
    if not _RENDERED.search(fragment):
        return fragment
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    changed = False
    for el in list(root.iter()):
        if not isinstance(el.tag, str) or el.getparent() is None:
            continue
        classes = set((el.get("class") or "").split())
        if el.tag == "script" and (el.get("type") or "").startswith("math/tex"):
            display = "mode=display" in (el.get("type") or "")
            _replace(el, _formula_element(el.text or "", display))
        elif "katex-html" in classes or classes & {"MathJax_Preview"}:
            el.drop_tree()
        elif el.tag == "mjx-container" or classes & _MATHJAX_CLASSES:
            math = next(el.iter("math"), None)
            _replace(el, math)
        else:
            continue
        changed = True
    if not changed:
        return fragment
    inner = html.escape(root.text, quote=False) if root.text else ""
    return inner + "".join(
        etree.tostring(child, encoding="unicode", method="html") for child in root
    )


def _formula_element(tex: str, display: bool) -> Any:
    """A formula from a feed as an element: its MathML, or its TeX in a span."""
    mathml = tex_to_mathml(tex, display)
    if mathml is not None:
        return etree.fromstring(mathml)
    span = lxml_html.Element("span", {"class": "math display" if display else "math inline"})
    span.text = f"\\[{tex}\\]" if display else f"\\({tex}\\)"
    return span


def _replace(el: Any, new: Any) -> None:
    """Put `new` (or nothing, when None) where `el` is, keeping the text after it."""
    if new is None:
        el.drop_tree()
        return
    new.tail = el.tail
    el.getparent().replace(el, new)
