"""OPML 2.0 feed lists, the format every feed reader imports and exports. Pure, no IO.

Import reads every <outline> with an xmlUrl, at any depth; the titles of the
outlines around it become its tags (a reader's folders). Export writes one
flat list, with a feed's tags in the OPML `category` attribute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from lxml import etree

from aggregator.errors import SourceError


@dataclass(frozen=True)
class OpmlFeed:
    url: str
    title: str = ""
    tags: tuple[str, ...] = ()


def read(data: bytes, location: str) -> list[OpmlFeed]:
    """The feeds of an OPML document; SourceError naming `location` and line if malformed."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        line = e.lineno or 0
        raise SourceError(f"{location}:{line}", f"not valid OPML (XML): {e.msg}") from None
    if root.tag != "opml":
        raise SourceError(location, f"not OPML: the root element is <{root.tag}>, not <opml>")
    body = root.find("body")
    if body is None:
        raise SourceError(location, "not OPML: no <body> element")
    out: list[OpmlFeed] = []

    def walk(el: etree._Element, folders: tuple[str, ...]) -> None:
        for child in el:
            if child.tag != "outline":
                continue
            title = (child.get("title") or child.get("text") or "").strip()
            url = (child.get("xmlUrl") or "").strip()
            if url:
                cats = tuple(
                    c.strip().strip("/")
                    for c in (child.get("category") or "").split(",")
                    if c.strip().strip("/")
                )
                tags = tuple(dict.fromkeys((*folders, *cats)))
                out.append(OpmlFeed(url=url, title=title, tags=tags))
            else:
                walk(child, (*folders, title) if title else folders)

    walk(body, ())
    return out


def write(feeds: Sequence[OpmlFeed], title: str, now: datetime) -> bytes:
    """An OPML 2.0 document listing `feeds`."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    body = etree.SubElement(root, "body")
    for f in feeds:
        attrs = {"type": "rss", "text": f.title or f.url, "title": f.title or f.url}
        attrs["xmlUrl"] = f.url
        if f.tags:
            attrs["category"] = ",".join(f.tags)
        etree.SubElement(body, "outline", attrs)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
