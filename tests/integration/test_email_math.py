"""The formulas of the bundled example's email, as a subscriber's mail client gets
them: PNG images published under the output directory, the TeX in the text part."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lxml import html as lxml_html
from PIL import Image

from aggregator import newsletter, pipeline
from aggregator.mathspans import Formula, split_math
from aggregator.newsletter import message
from aggregator.store import Store
from tests.conftest import NOW
from tests.email_setup import configure
from tests.integration.test_email_send import parts
from tests.smtp_server import SmtpServer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ISSUE = "2026-W47"


def _formulas(text: str) -> list[str]:
    """The formulas of a text as written, white space folded (the text part
    is wrapped at 72 columns, and a formula may be wrapped too)."""
    return [
        " ".join(part.written.split()) for part in split_math(text) if isinstance(part, Formula)
    ]


def test_every_formula_is_an_image_on_disk_and_the_text_part_keeps_the_tex(
    example: Path, smtp_server: SmtpServer
) -> None:
    config = configure(example, smtp_server.port, [("ada@example.com", "Ada")])
    store = Store.open(config.database.url)
    pipeline.ingest(config, store, NOW)
    report = newsletter.send(config, store, NOW)
    assert report.issue == ISSUE and report.sent == 1

    (received,) = smtp_server.handler.received
    text, html = parts(received.message())
    in_text = _formulas(text)
    assert in_text, "the example's issue shows no formula: nothing checked"

    doc: Any = lxml_html.fromstring(html)
    images = doc.xpath("//img[contains(concat(' ', @class, ' '), ' math ')]")
    alts = [" ".join(img.get("alt").split()) for img in images]
    # Each formula the text part shows as TeX is one image in the HTML, in order.
    assert alts == in_text
    # No formula left as TeX in what the HTML part shows (all of the
    # example's formulas are within what mathtext draws).
    assert not doc.xpath("//*[contains(concat(' ', @class, ' '), ' math-tex ')]")
    assert _formulas(doc.text_content()) == []

    base = f"https://blog.example.org/issues/{ISSUE}/math/"
    for img in images:
        src = img.get("src")
        assert src.startswith(base) and re.fullmatch(r"[0-9a-f]{20}\.png", src[len(base) :])
        path = config.output.dir / "issues" / ISSUE / "math" / src[len(base) :]
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 100
        with Image.open(path) as png:
            png.load()  # the whole file decodes
            assert png.mode == "LA"  # transparent ground
            # drawn at twice its size, for high-density screens
            assert png.size == (2 * int(img.get("width")), 2 * int(img.get("height")))
            assert png.getchannel("A").getbbox() is not None  # something is drawn
        style = img.get("style")
        assert "vertical-align:" in style or "display:block" in style  # on the baseline
    # The same formula is one file.
    assert len({img.get("src") for img in images}) == len(set(alts))

    assert message.encoded_html_size(html) <= config.email.max_html_kb * 1024
