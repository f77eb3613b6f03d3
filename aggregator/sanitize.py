"""Untrusted HTML made safe to show and to write as XML, in bounded time.

Pure functions, no IO. sanitize_html is the one door: an allowlist of tags
and attributes (nh3), links made absolute, only http, https, mailto and
raster data: images; rebase_links resolves the links of the writer's own
posts. What they return holds only characters XML 1.0 can carry (xml_safe),
attribute values included: our feeds are XML, and lxml refuses a string with
one such character, so one would stop every output. Their time is linear in
the input: HTML nested deeper than MAX_DEPTH is flattened below that depth,
and what libxml2 cannot read (over 250 levels deep) is dropped and said.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from contextvars import ContextVar
from functools import cache
from itertools import accumulate
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import nh3
from lxml import etree
from lxml import html as lxml_html

from aggregator.mathml import MATHML_ATTRS, MATHML_TAGS, reduce_rendered_math

#: characters XML 1.0 cannot carry: C0 controls but tab, LF and CR, lone
#: surrogates (a str can hold one; UTF-8 cannot), U+FFFE, U+FFFF. Our feeds
#: are XML and lxml refuses them outright, so one such character from a feed
#: would stop every output from being written. And those HTML makes a parse
#: error besides, which XML allows: DEL, the C1 controls, the noncharacters.
_NOT_XML = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(chr(plane << 16 | low) for plane in range(17) for low in (0xFFFE, 0xFFFF))
    + "]"
)


#: the same test, fast: a class of ranges is a bitmap test per character, where
#: the 32 astral noncharacters listed one by one made every search 7x slower
#: (xml_safe runs on every text of every entry, several times)
_NOT_XML_BMP = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]"
)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def has_not_xml(text: str) -> bool:
    """Whether `text` holds a character xml_safe replaces."""
    if _NOT_XML_BMP.search(text):
        return True
    return bool(_ASTRAL.search(text)) and bool(_NOT_XML.search(text))


def xml_safe(text: str) -> str:
    """`text` with each character XML cannot carry (or HTML reads as an error)
    replaced by a space."""
    return _NOT_XML.sub(" ", text) if has_not_xml(text) else text


# Tags and attributes a digest may carry: formatting, links, images, tables,
# code and math. No script, style, iframe, form or event handler ever passes.
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "details",
    "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small",
    "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul",
} | MATHML_TAGS  # fmt: skip
_ATTRS = {
    **MATHML_ATTRS,
    "*": {"class", "title", "lang", "dir"},
    "a": {"href", "hreflang"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "ol": {"start"},
}

#: elements that set their text apart from what surrounds it
BLOCK = {
    "p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
    "pre", "table", "tr", "td", "th", "dl", "dt", "dd", "figure", "figcaption", "br", "hr",
    "section", "article", "header", "footer",
}  # fmt: skip


#: the only data: URLs that pass: raster images in <img src>. Never SVG (it can
#: carry script), never a data: link, which a browser would open as a page.
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp)[;,]")
#: what a browser ignores in a URL (WHATWG URL: tab and newline anywhere,
#: C0 controls and space at either end), so "da\tta:" is data: too
_URL_NOISE = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(map(chr, range(33)))


def _data_images_only(tag: str, attr: str, value: str) -> str | None:
    url = _URL_NOISE.sub("", value).strip(_C0_AND_SPACE).lower()
    if not url.startswith("data:"):
        return value
    return value if tag == "img" and attr == "src" and _DATA_IMAGE.match(url) else None


#: sanitized HTML is nested at most this deep: elements below are dropped,
#: their text kept. lxml (html_to_text, premailer for the email) stops reading
#: a document at 256 levels, and the email wraps an entry in about 15.
MAX_DEPTH = 100
#: a fragment with more tags than this ("<" counted) is read by libxml2 before
#: the sanitizer. html5ever, the sanitizer's parser, takes time quadratic in
#: nesting (each <div> looks down the whole stack of open elements for a <p>
#: to close): 2,000 nested tags cost it under 10 ms, 200,000 over a minute.
#: libxml2 is linear and stops at 256 levels, dropping the rest, which is
#: then reported. Real posts have far fewer tags (the most in the 3,785
#: entries of tests/data/realworld: 614), and keep html5ever's reading.
MAX_FAST_TAGS = 2000


def sanitize_html(
    fragment: str, base_url: str | None = None, *, notes: list[str] | None = None
) -> str:
    """Clean untrusted HTML and make its links absolute against `base_url`.

    URLs may be http, https, mailto or relative; data: only for a PNG, JPEG,
    GIF or WebP image in <img src>. The result holds only characters XML can
    carry: in a link a character it cannot is percent-encoded (as a browser
    reads it), elsewhere it becomes a space. Time is linear in the size of
    `fragment`: HTML nested over 250 levels deep loses what follows that
    point, and the result is nested at most MAX_DEPTH deep (elements below
    are dropped, their text kept); each time one of these cuts something, a
    sentence for a person saying so is appended to `notes`.
    """
    fragment = reduce_rendered_math(xml_safe(fragment))
    if fragment.count("<") > MAX_FAST_TAGS:
        fragment = _read_by_libxml2(fragment, notes)
    html = _clean(fragment, base_url, safe_urls=False)
    if has_not_xml(html):
        # A character reference (&#1;) the sanitizer decoded: clean again with
        # the filter that percent-encodes it inside links (rare: it costs a
        # Python call for each attribute).
        html = xml_safe(_clean(fragment, base_url, safe_urls=True))
    if html.count("<") > MAX_DEPTH and _depth(html) > MAX_DEPTH:
        html = _flatten(html, notes)
    return html


def _clean(fragment: str, base_url: str | None, safe_urls: bool) -> str:
    # The per-attribute callback costs time: only a fragment that may hold a
    # data: URL pays it (without "data" in url_schemes nh3 drops them all).
    data = "data:" in fragment.lower()
    if not base_url:
        return _cleaner(data, False, safe_urls).clean(fragment)
    # The sanitizer resolves relative links itself (it calls _rebase_link for
    # each href and src that has no scheme): no second parse of the HTML.
    # The cleaner is shared, so this call's base reaches it by a context
    # variable (one per thread), set only while this call cleans.
    token = _LINK_BASE.set((base_url, _origin(base_url)))
    try:
        return _cleaner(data, True, safe_urls).clean(fragment)
    finally:
        _LINK_BASE.reset(token)


#: the base_url of the sanitize_html call under way, and its _origin
_LINK_BASE: ContextVar[tuple[str, str | None]] = ContextVar("sanitize_link_base")


@cache
def _cleaner(data: bool, rebase: bool, safe_urls: bool = False) -> nh3.Cleaner:
    """The sanitizer for fragments with (`data`) or without a data: URL, with
    (`rebase`) or without a base for relative links, and with (`safe_urls`) or
    without the filter for characters XML cannot carry. Built once: building
    one costs more than cleaning a typical post."""
    attribute_filter: Callable[[str, str, str], str | None] | None = None
    if data and safe_urls:
        attribute_filter = _xml_safe_data_images_only
    elif data:
        attribute_filter = _data_images_only
    elif safe_urls:
        attribute_filter = _xml_safe_attribute
    return nh3.Cleaner(
        tags=_TAGS,
        attributes=_ATTRS,
        url_schemes={"http", "https", "mailto", "data"} if data else {"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        attribute_filter=attribute_filter,
        url_relative=_rebase_link if rebase else None,
    )


#: attributes holding a URL, among those _ATTRS lets through
_URL_ATTRS = frozenset({"href", "src"})


def _xml_safe_attribute(tag: str, attr: str, value: str) -> str:
    """An attribute value with what XML cannot carry percent-encoded in a URL
    (as a browser reads U+0001 in a URL: "%01"), replaced by a space elsewhere.

    nh3 calls the filter after its scheme check and before resolving a
    relative link: a control character inside a scheme ("java", U+0001,
    "script:") made the URL relative, and encoded it stays relative
    ("java%01script:"), where removing it would make a javascript: link.
    """
    if not has_not_xml(value):
        return value
    if attr in _URL_ATTRS:
        return _url_safe(value)
    return xml_safe(value)


def _xml_safe_data_images_only(tag: str, attr: str, value: str) -> str | None:
    kept = _data_images_only(tag, attr, value)
    return None if kept is None else _xml_safe_attribute(tag, attr, kept)


def _url_safe(url: str) -> str:
    """`url` with each character XML cannot carry percent-encoded (as UTF-8)."""
    return _NOT_XML.sub(lambda m: quote(m.group(0), errors="replace"), url)


def _read_by_libxml2(fragment: str, notes: list[str] | None) -> str:
    """`fragment` read by libxml2 and written out again: time linear in its
    size, nesting at most 255 levels deep (what follows a deeper point is
    dropped, and noted). For the sanitizer, which is quadratic in nesting."""
    parser = etree.HTMLParser()  # its own: the error log says what was cut
    try:
        root = lxml_html.fragment_fromstring(fragment, create_parent="div", parser=parser)
    except (etree.ParserError, ValueError) as e:  # never seen: even only comments read
        if notes is not None:
            notes.append(f"HTML that could not be read was dropped ({e})")
        return ""
    _note_cut(parser, notes)
    return _inner_html(root)


def _note_cut(parser: etree.HTMLParser, notes: list[str] | None) -> None:
    """Say so in `notes` if libxml2 stopped reading: a fatal error, nesting
    over 250 levels deep (it stops at 256, counting the elements lxml wraps
    a fragment in) or a text over its 10 MB limit."""
    cut = [e for e in parser.error_log if e.level_name == "FATAL"]
    if cut and notes is not None:
        why = "nested over 250 levels deep" if "depth" in cut[0].message else "too large to read"
        notes.append(f"HTML {why}: what follows that point was dropped")


def _inner_html(root: Any) -> str:
    """The HTML of what `root` holds, written by lxml."""
    inner = (root.text and html_lib.escape(root.text, quote=False)) or ""
    return inner + "".join(
        etree.tostring(child, encoding="unicode", method="html") for child in root
    )


# In the sanitizer's output every "<" starts a tag ("<" in text and in
# attribute values is written "&lt;"), every element but a void one has its
# end tag (MathML's too), and attribute values are in double quotes.
_HTML_VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip
_VOID = frozenset(_TAGS & _HTML_VOID)
_TAG_KIND = re.compile(rf"<(/|(?:{'|'.join(sorted(_VOID))})[\s>])?")
_OUT_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)[^>]*>")


def _depth(html: str) -> int:
    """How deep the sanitizer's output `html` is nested."""
    kinds = _TAG_KIND.findall(html)
    return max(accumulate(1 if not k else -1 if k == "/" else 0 for k in kinds), default=0)


def _flatten(html: str, notes: list[str] | None) -> str:
    """The sanitizer's output `html` with the elements nested deeper than
    MAX_DEPTH dropped (a block one leaves a space) and their text kept."""
    parts: list[str] = []
    pos = depth = dropped = 0
    #: for each open element, whether its tags are dropped
    stack: list[bool] = []
    for m in _OUT_TAG.finditer(html):
        parts.append(html[pos : m.start()])
        pos = m.end()
        closing, name = m.group(1), m.group(2)
        if closing:
            drop = stack.pop() if stack else False
            depth -= 0 if drop else 1
        elif name in _VOID:
            drop = depth >= MAX_DEPTH
        else:
            drop = depth >= MAX_DEPTH
            stack.append(drop)
            depth += 0 if drop else 1
        if drop:
            dropped += 1
            parts.append(" " if name in BLOCK else "")
        else:
            parts.append(m.group(0))
    parts.append(html[pos:])
    if dropped and notes is not None:
        notes.append(
            f"HTML nested deeper than {MAX_DEPTH} levels: the markup below that depth"
            " was dropped, its text kept"
        )
    return "".join(parts)


def _rebase_link(link: str) -> str | None:
    """`link` made absolute against the base of the sanitize_html call under way."""
    base_url, origin = _LINK_BASE.get()
    return _rebase(base_url, origin, link)


#: what makes urljoin do more than prepend the origin to an absolute path:
#: a dot segment, a query or fragment (an empty one is dropped), path
#: parameters (";"), and the tab and newlines urlsplit deletes
_NOT_PLAIN_PATH = re.compile(r"/\.|[?#;\t\n\r]")


def _origin(base_url: str) -> str | None:
    """The "scheme://host" of an http(s) `base_url`, as urljoin spells it; None
    when urljoin must do the work (another scheme, no host, or a base it rejects)."""
    try:
        base = urlsplit(base_url)
    except ValueError:  # urljoin raises the same error, for each link, as before
        return None
    if base.scheme not in ("http", "https") or not base.netloc:
        return None
    return f"{base.scheme}://{base.netloc}"


def _rebase(base_url: str, origin: str | None, link: str) -> str | None:
    """A relative link made absolute, as rebase_links does it (a scheme-relative
    //host/path stays as it is); None, which drops the attribute, for a link
    that does not parse as a URL ("//[x"). `origin` is _origin(base_url)."""
    if origin and link[:1] == "/" and link[1:2] != "/" and not _NOT_PLAIN_PATH.search(link):
        # Fast path, same result: urljoin of an absolute path with nothing to
        # resolve is the base's scheme and host followed by the path.
        return origin + link
    try:
        if urlsplit(link).scheme or link.startswith("//"):
            return link
        return urljoin(base_url, link)
    except ValueError:
        return None


def rebase_links(
    fragment: str,
    href_base: str,
    src_base: str,
    is_file: Callable[[str], bool] | None = None,
    *,
    notes: list[str] | None = None,
) -> str:
    """Make every relative link in `fragment` absolute.

    Images and other embedded resources (src) resolve against `src_base`;
    links (href) against `href_base`, except a link for which `is_file`
    (given the relative link) is true, which resolves against `src_base`
    like an image. Fragment-only links (#fn1) resolve against `href_base`.
    lxml reads the HTML: nested over 250 levels deep, what follows that
    point is dropped, and a sentence saying so appended to `notes` (a
    fragment of more than MAX_FAST_TAGS tags is read even with no link, so
    that this is said here rather than by the sanitizer, later).
    """
    fragment = xml_safe(fragment)
    if not fragment.strip():
        return fragment
    if "href=" not in fragment and "src=" not in fragment and fragment.count("<") <= MAX_FAST_TAGS:
        return fragment  # no link, and too few tags to be nested too deep for lxml
    parser = etree.HTMLParser()  # its own: the error log says what was cut
    root = lxml_html.fragment_fromstring(fragment, create_parent="div", parser=parser)
    _note_cut(parser, notes)
    for el, attr, link, _pos in list(root.iterlinks()):
        try:
            if attr is None or urlsplit(link).scheme or link.startswith("//"):
                continue
        except ValueError:  # "//[x" is no URL: left as written (the sanitizer drops it)
            continue
        if attr == "href" and not (is_file and not link.startswith("#") and is_file(link)):
            base = href_base
        else:
            base = src_base
        # libxml2 decodes "&#1;" in an attribute; lxml refuses to set it back.
        el.set(attr, urljoin(base, _url_safe(link)))
    return xml_safe(_inner_html(root))
