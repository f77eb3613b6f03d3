"""Formulas in excerpts: found whole, shown as MathML on pages and as images in the email."""

from __future__ import annotations

import io

import pytest
from lxml import html as lxml_html
from PIL import Image

from aggregator.mathspans import Formula, email_html, email_images, mathml_html, split_math


@pytest.mark.parametrize(
    ("text", "formulas"),
    [
        (r"损失 \(p_{data}(x)\) 之和", [("p_{data}(x)", False, r"\(p_{data}(x)\)")]),
        (r"见 \[\sum_i x_i\] 下文", [(r"\sum_i x_i", True, r"\[\sum_i x_i\]")]),
        ("a $x^2$ b", [("x^2", False, "$x^2$")]),
        ("$$y=1$$", [("y=1", True, "$$y=1$$")]),
        (r"\(a\)\(b\)", [("a", False, r"\(a\)"), ("b", False, r"\(b\)")]),
    ],
)
def test_every_form_is_found_whole_in_order(
    text: str, formulas: list[tuple[str, bool, str]]
) -> None:
    found = [p for p in split_math(text) if isinstance(p, Formula)]
    assert [(f.tex, f.display, f.written) for f in found] == formulas
    # nothing is lost or moved: the parts put back together are the text
    assert "".join(p if isinstance(p, str) else p.written for p in split_math(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "costs $5 or $10",  # Pandoc's rule: a digit after the closing dollar
        r"an escaped \$x\$ stays text",
        r"cut short \(x + y",  # an excerpt cut before the closing delimiter
        "$ x$ has a space inside",
        "$$ $$",
    ],
)
def test_what_is_not_a_formula_stays_text(text: str) -> None:
    assert split_math(text) == [text]


def test_pages_show_mathml_with_the_tex_annotation_and_escape_the_text() -> None:
    page = mathml_html(r"a < b and \(x_1\)")
    assert page.startswith("a &lt; b and <math")
    assert '<annotation encoding="application/x-tex">x_1</annotation>' in page


def test_a_formula_that_does_not_convert_stays_tex_on_pages() -> None:
    assert mathml_html(r"see \(\frac{1}{2\) here") == r"see \(\frac{1}{2\) here"


def test_the_email_shows_each_formula_as_an_image_with_its_tex_as_alt() -> None:
    base = "https://digest.example.org/issues/2026-W47/math/"
    email = email_html(r"inline \(x^2\) and display \[\sum_i x_i\]", base)
    imgs = lxml_html.fragment_fromstring(email, create_parent="div").findall(".//img")
    assert [i.get("alt") for i in imgs] == [r"\(x^2\)", r"\[\sum_i x_i\]"]
    assert all(i.get("src", "").startswith(base) for i in imgs)
    assert "display:block" in imgs[1].get("style", "")
    files, undrawn = email_images(f"<html><body>{email}</body></html>", "issues/2026-W47/math/")
    assert undrawn == []
    assert {base + name for name in files} == {i.get("src") for i in imgs}
    for img in imgs:
        png = Image.open(io.BytesIO(files[img.get("src").rsplit("/", 1)[1]]))
        # drawn at twice the size the email states, with transparency
        assert png.size == (2 * int(img.get("width")), 2 * int(img.get("height")))
        assert png.mode == "LA"


def test_a_formula_mathtext_cannot_draw_stays_tex_and_is_named() -> None:
    tex = r"\(\begin{pmatrix}a&b\end{pmatrix}\)"
    email = email_html(f"matrix {tex}", "https://digest.example.org/issues/k/math/")
    assert "<img" not in email
    assert 'class="math-tex"' in email and "pmatrix" in email
    files, undrawn = email_images(f"<html><body>{email}</body></html>", "issues/k/math/")
    assert files == {} and len(undrawn) == 1 and "pmatrix" in undrawn[0]
