"""Does an output put live script in front of a reader? One checker for every
kind of file build writes and every message send hands over.

Each function returns findings, one line each, naming the file (`where`) and
what was found; an empty list is a clean output. What counts as live script:

- an element that runs or loads code or navigates by itself: <script>,
  <iframe>, <frame>, <frameset>, <object>, <embed>, <applet>, <form>,
  <base>, <meta http-equiv="refresh">;
- an event-handler attribute (on*), on any element, in any namespace;
- a javascript:, vbscript: or data: URL (data: is let through for a raster
  image only: png, jpeg, gif, webp) in any URL attribute (href, src, action,
  formaction, xlink:href, srcset, poster, ...), in an SVG animation's values,
  or in CSS (url(javascript:...), expression(), -moz-binding);
- in a feed: such a URL in a link (Atom link/@href, RSS <link>, <comments>,
  <enclosure url>, a permalink <guid>, JSON Feed url fields), or such markup
  in a field readers render as HTML (Atom type="html" or "xhtml" text
  constructs, RSS <description> and <content:encoded>, JSON content_html).

URLs are read as a browser reads them (WHATWG URL): leading and trailing C0
controls and spaces stripped, tabs and newlines removed anywhere, the scheme
compared case-insensitively. HTML is parsed with html5lib, as a browser
parses it, so character references and malformed markup decode the way they
would in front of a reader; every parse error is a finding too (`html_problems`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import html5lib
from lxml import etree

#: elements that run, load or navigate on their own
ACTIVE_ELEMENTS = frozenset(
    {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "base"}
)
#: attributes whose value is a URL (local names; xlink:href is "href")
URL_ATTRIBUTES = frozenset(
    {
        "href", "src", "action", "formaction", "srcset", "imagesrcset", "poster", "background",
        "cite", "data", "codebase", "classid", "archive", "longdesc", "usemap", "lowsrc",
        "dynsrc", "manifest", "icon", "ping", "profile", "itemtype",
    }
)  # fmt: skip
#: SVG animation attributes that can set an href to a javascript: URL
ANIMATION_ATTRIBUTES = frozenset({"to", "from", "values", "by"})
#: schemes that run script when followed
SCRIPT_SCHEMES = ("javascript", "vbscript", "livescript", "mocha")
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
_RASTER = re.compile(r"image/(png|jpeg|jpg|gif|webp)\s*[;,]", re.I)
_CSS_SCRIPT = re.compile(r"(javascript|vbscript):|expression\(|-moz-binding|behavior:", re.I)
ATOM = "http://www.w3.org/2005/Atom"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
#: What no output may carry: what XML 1.0 forbids (C0 controls but tab, LF, CR;
#: surrogates; U+FFFE, U+FFFF), and what HTML makes a parse error besides (DEL,
#: C1 controls, noncharacters). Form feed is HTML white space but not XML.
_NONCHARACTERS = "".join(chr(p * 0x10000 + c) for p in range(17) for c in (0xFFFE, 0xFFFF))
_BAD_CHAR = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + _NONCHARACTERS + "]"
)


# -- URLs ---------------------------------------------------------------------------


def url_scheme(value: str) -> str:
    """The scheme a browser sees in `value`, lower-cased; "" for a relative URL."""
    cleaned = value.strip("".join(chr(c) for c in range(0x21))).replace("\t", "")
    cleaned = cleaned.replace("\n", "").replace("\r", "")
    m = _SCHEME.match(cleaned)
    return m.group(1).lower() if m else ""


def script_url(value: str) -> bool:
    """Whether following `value` runs script or renders a document we did not write:
    javascript:/vbscript: URLs, and data: URLs other than raster images."""
    scheme = url_scheme(value)
    if scheme in SCRIPT_SCHEMES:
        return True
    if scheme == "data":
        rest = value.strip("".join(chr(c) for c in range(0x21)))
        rest = re.sub(r"[\t\n\r]", "", rest)[5:]
        return not _RASTER.match(rest)
    return False


def _srcset_urls(value: str) -> Iterator[str]:
    for candidate in value.split(","):
        parts = candidate.split()
        if parts:
            yield parts[0]


# -- HTML ---------------------------------------------------------------------------


def _local(name: Any) -> str:
    return str(name).rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower()


def tree_problems(root: Any, where: str) -> list[str]:
    """Live script in an element tree (lxml or xml.etree, as html5lib builds it)."""
    found: list[str] = []
    for el in root.iter():
        if not isinstance(el.tag, str):  # comments, processing instructions
            continue
        tag = _local(el.tag)
        if tag in ACTIVE_ELEMENTS:
            found.append(f"{where}: <{tag}> element")
        attrs = {_local(k): str(v) for k, v in el.attrib.items()}
        if tag == "meta" and attrs.get("http-equiv", "").strip().lower() == "refresh":
            found.append(f"{where}: <meta http-equiv=refresh content={attrs.get('content')!r}>")
        if tag == "style" and _CSS_SCRIPT.search(re.sub(r"\s+", "", el.text or "")):
            found.append(f"{where}: script in <style>: {(el.text or '')[:80]!r}")
        for name, value in attrs.items():
            if name.startswith("on"):
                found.append(f"{where}: event handler {name}= on <{tag}>")
            elif name in ("srcset", "imagesrcset"):
                bad = [u for u in _srcset_urls(value) if script_url(u)]
                if bad:
                    found.append(f"{where}: {name}={value[:80]!r} on <{tag}>")
            elif name in URL_ATTRIBUTES or name in ANIMATION_ATTRIBUTES:
                values = value.split(";") if name == "values" else [value]
                if any(script_url(v) for v in values):
                    found.append(f"{where}: {name}={value[:80]!r} on <{tag}>")
            elif name == "style" and _CSS_SCRIPT.search(re.sub(r"\s+", "", value)):
                found.append(f"{where}: script in style={value[:80]!r} on <{tag}>")
    return found


def _parser() -> html5lib.HTMLParser:
    return html5lib.HTMLParser(tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=False)


def _bare_ampersand(code: str, pos: tuple[int, int], lines: list[str]) -> bool:
    """Whether html5lib's error is an "&" followed by no letter, digit or "#"
    ("&{", "& "): no error in today's HTML (WHATWG), one in html5lib 1.1's
    older tokenizer. libxml2 writes "&{" unescaped in attributes (premailer's
    email HTML): Netscape 4's script entity, which no browser runs since."""
    line, col = pos
    if code != "expected-named-entity" or not 0 < line <= len(lines):
        return False
    text = lines[line - 1]
    return (
        0 < col < len(text)
        and text[col - 1] == "&"
        and not (text[col].isalnum() or text[col] == "#")
    )


def html_problems(data: bytes | str, where: str, *, fragment: bool = False) -> list[str]:
    """Parse errors and live script in an HTML document (or a fragment of one,
    such as the HTML a feed carries)."""
    if isinstance(data, bytes):  # every output is UTF-8: no sniffing
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            return [f"{where}: not UTF-8: {e}"]
    parser = _parser()
    root = parser.parseFragment(data) if fragment else parser.parse(data)
    # An invalid code point is named below, by text_problems: html5lib's
    # position for it is often wrong.
    lines = data.split("\n")
    found = [
        f"{where}: HTML parse error at {pos}: {code} {dict(info or {})}"
        for pos, code, info in parser.errors
        if code != "invalid-codepoint" and not _bare_ampersand(code, pos, lines)
    ]
    found += [f"{where}: {problem}" for problem in text_problems(data)]
    return found + tree_problems(root, where)


# -- text ---------------------------------------------------------------------------


def text_problems(text: str) -> list[str]:
    """Characters no output may carry: control characters other than tab and
    newline (C0, DEL, C1), lone surrogates, noncharacters (U+FFFE...)."""
    counts: dict[str, int] = {}
    for c in _BAD_CHAR.findall(text):
        counts[c] = counts.get(c, 0) + 1
    return [f"character U+{ord(c):04X} ({n}x)" for c, n in sorted(counts.items())[:10]]


# -- feeds --------------------------------------------------------------------------

#: Atom text constructs: their type says whether readers render them as HTML
_ATOM_TEXT = frozenset({"title", "subtitle", "summary", "content", "rights"})
#: elements whose text is a URL (Atom icon, logo, uri; RSS link, comments, docs, url)
_URL_ELEMENTS = frozenset({"link", "comments", "docs", "icon", "logo", "uri", "url"})


def xml_problems(data: bytes, where: str) -> tuple[etree._Element | None, list[str]]:
    """Parse an XML output strictly (XML 1.0, no entities loaded, no network)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        return etree.fromstring(data, parser), []
    except etree.XMLSyntaxError as e:
        return None, [f"{where}: not well-formed XML: {e}"]


def feed_problems(data: bytes, where: str) -> list[str]:
    """An Atom or RSS file: well-formed XML, no script URL in a link, no live
    script in any field a feed reader renders as HTML."""
    root, found = xml_problems(data, where)
    if root is None:
        return found
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        ns, _, local = el.tag[1:].partition("}") if el.tag.startswith("{") else ("", "", el.tag)
        for name, value in el.attrib.items():
            if _local(name) in ("href", "src", "url", "uri") and script_url(str(value)):
                found.append(f"{where}: <{local} {_local(name)}={str(value)[:80]!r}>")
        text = el.text or ""
        if local in _URL_ELEMENTS and len(el) == 0 and text.strip() and script_url(text):
            found.append(f"{where}: <{local}>{text[:80]!r}</{local}>")
        if local == "guid" and el.get("isPermaLink", "true") != "false" and script_url(text):
            found.append(f"{where}: permalink <guid>{text[:80]!r}</guid>")
        if ns == ATOM and local in _ATOM_TEXT:
            kind = el.get("type", "text")
            if kind == "html":
                found += html_problems(text, f"{where} <{local} type=html>", fragment=True)
            elif kind == "xhtml":
                found += tree_problems(el, f"{where} <{local} type=xhtml>")
        if (ns == "" and local == "description") or (ns == CONTENT_NS and local == "encoded"):
            found += html_problems(text, f"{where} <{local}>", fragment=True)
    return found


#: JSON Feed 1.1 fields that hold a URL
_JSON_URLS = frozenset(
    {"home_page_url", "feed_url", "next_url", "icon", "favicon", "url", "external_url",
     "image", "banner_image", "avatar"}
)  # fmt: skip


def json_feed_problems(data: bytes, where: str) -> list[str]:
    """A JSON Feed: valid JSON, no script URL in a URL field, no live script in
    content_html."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        return [f"{where}: not valid JSON: {e}"]
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                sub = f"{path}.{key}"
                if isinstance(item, str):
                    found.extend(f"{where} {sub}: {p}" for p in text_problems(item))
                    if key in _JSON_URLS and script_url(item):
                        found.append(f"{where} {sub}: {item[:80]!r}")
                    if key == "content_html":
                        found.extend(html_problems(item, f"{where} {sub}", fragment=True))
                else:
                    walk(item, sub)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")

    walk(doc, "")
    return found


# -- email --------------------------------------------------------------------------


def message_problems(data: bytes, where: str) -> list[str]:
    """An email message as handed to SMTP (or written as .eml): no header defect
    (a header broken by a value from outside), every HTML part clean, every text
    part free of control characters."""
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    found = [f"{where}: message defect {d!r}" for d in msg.defects]
    for part in msg.walk():
        found += [f"{where}: {part.get_content_type()} defect {d!r}" for d in part.defects]
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        body = part.get_content()
        if kind == "text/html":
            found += html_problems(body, f"{where} text/html")
        elif kind == "text/plain":
            found += [f"{where} text/plain: {p}" for p in text_problems(body)]
    return found


def output_problems(path_name: str, data: bytes) -> list[str]:
    """Dispatch on the output's name: feeds, JSON Feed, HTML, text, messages."""
    if path_name.endswith((".atom", ".xml", ".rss")):
        return feed_problems(data, path_name)
    if path_name.endswith(".json"):
        return json_feed_problems(data, path_name)
    if path_name.endswith((".html", ".htm")):
        return html_problems(data, path_name)
    if path_name.endswith(".eml"):
        return message_problems(data, path_name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return [f"{path_name}: not UTF-8: {e}"]
    return [f"{path_name}: {p}" for p in text_problems(text)]


def all_problems(outputs: Iterable[tuple[str, bytes]]) -> list[str]:
    """Findings for many outputs at once."""
    found: list[str] = []
    for name, data in outputs:
        found += output_problems(name, data)
    return found
