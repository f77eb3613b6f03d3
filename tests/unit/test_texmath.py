"""Math in Markdown: the four forms, in every position, as MathML keeping their TeX;
MathML from feeds through the sanitizer; summaries keep TeX."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml import html as lxml_html

from aggregator.texmath import MathProblem, formulas, tex_to_mathml
from aggregator.text import _markdown, excerpt, html_to_text, markdown_to_html, sanitize_html

CONTENT = Path(__file__).resolve().parents[2] / "content"
FORMS = {"\\(": ("\\)", False), "\\[": ("\\]", True), "$": ("$", False), "$$": ("$$", True)}


def shown(html: str) -> list[tuple[str, bool]]:
    """Every formula in `html`, in order: (its TeX, display) from a <math>'s
    annotation, or the text of a span of class "math" (a formula kept as TeX)."""
    root = lxml_html.fragment_fromstring(html, create_parent="div")
    out: list[tuple[str, bool]] = []
    for el in root.iter("math", "span"):
        if el.tag == "math":
            notes = [a for a in el.iter("annotation") if a.get("encoding") == "application/x-tex"]
            assert len(notes) == 1
            out.append((notes[0].text or "", el.get("display") == "block"))
        elif "math" in (el.get("class") or "").split():
            out.append((el.text_content(), "display" in (el.get("class") or "")))
    return out


def body_of(text: str) -> str:
    """A post's Markdown after its front matter (--- YAML --- or +++ TOML +++)."""
    for fence in ("---", "+++"):
        if text.startswith(fence + "\n"):
            end = text.find("\n" + fence + "\n", len(fence))
            if end >= 0:
                return text[end + len(fence) + 2 :]
    return text


@pytest.mark.parametrize("opener", list(FORMS))
@pytest.mark.parametrize(
    "template",
    [
        "{m} starts the paragraph.",
        "In the middle {m} of it.",
        "At the end {m}",
        "前后都是中文{m}没有空格",
        "- a list item with {m} inside\n- and another",
        "> a quote with {m} inside\n> over two lines",
        "1. numbered\n\n   > nested quote {m} here",
    ],
)
def test_each_form_in_each_position_becomes_mathml_with_its_tex(opener: str, template: str) -> None:
    closer, display = FORMS[opener]
    tex = r"\mathbf{x}_t=(1-t)\mathbf{x}_0+t\varepsilon_{*}"
    html = markdown_to_html(template.format(m=f"{opener}{tex}{closer}"))
    assert shown(html) == [(tex, display)]
    assert "<em>" not in html


@pytest.mark.parametrize("opener", ["\\(", "\\[", "$$"])
def test_a_formula_across_line_breaks_stays_one_formula(opener: str) -> None:
    closer, display = FORMS[opener]
    tex = "a_1 + b_1\n+ c_1\n- d_1\n# e_1"  # lines Markdown would read as list and heading
    html = markdown_to_html(f"Before {opener}{tex}{closer} after.")
    assert shown(html) == [(tex, display)]
    assert "<li>" not in html and "<h1>" not in html


def test_display_blocks_on_their_own_lines() -> None:
    html = markdown_to_html("Text.\n\n\\[\n\\sum_{i=1}^{n} x_i\n\\]\n\n$$\ny^2\n$$\n\nMore.")
    assert shown(html) == [("\\sum_{i=1}^{n} x_i", True), ("y^2", True)]


def test_dollars_follow_pandoc_and_code_stays_code() -> None:
    html = markdown_to_html(
        "It costs $5 or $10, `\\(x\\)` and `$y$` are code.\n\n```\n$$z$$ \\[w\\]\n```\n"
    )
    assert shown(html) == []
    assert "It costs $5 or $10" in html
    assert "<code>\\(x\\)</code>" in html and "$$z$$ \\[w\\]" in html


def test_a_formula_that_does_not_convert_stays_tex_and_is_reported_once() -> None:
    problems: list[MathProblem] = []
    src = "Fine \\(x\\).\n\nBad \\(\\nosuchcommand{x}\\) and\nagain \\(\\nosuchcommand{x}\\)."
    html = markdown_to_html(src, problems)
    assert shown(html)[1:] == [("\\(\\nosuchcommand{x}\\)", False)] * 2
    assert [(p.line, p.tex) for p in problems] == [(3, "\\(\\nosuchcommand{x}\\)")]


_WORD = st.text(alphabet="abcXYZ中文公式*_[]()!#-+.,&", min_size=1, max_size=6)
_TEXT = st.lists(st.tuples(_WORD, st.sampled_from([" ", "", "\n"])), max_size=6).map(
    lambda parts: "".join(w + sep for w, sep in parts)
)
_TEX = st.lists(
    st.sampled_from(
        ["x", "y_1", "\\alpha", "\\frac{a}{b}", "^{2}", "+", "=", "\\mathbf{v}", "(", ")",
         "[", "]", "*", "_{i}", "\\|", "<", "&", "\\sum_{k}", " ", "\n"]
    ),
    min_size=1,
    max_size=8,
).map("".join).filter(
    # no blank line: it ends a paragraph (and a formula, as in LaTeX)
    lambda t: t.strip() == t and all(line.strip() for line in t.split("\n"))
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_TEXT, st.sampled_from(list(FORMS)), _TEX), min_size=1, max_size=4), _TEXT
)
def test_random_text_around_math_never_alters_the_math(
    parts: list[tuple[str, str, str]], tail: str
) -> None:
    source, expected = "", []
    for before, opener, tex in parts:
        closer, display = FORMS[opener]
        if opener == "$" and "\n" in tex:
            tex = tex.replace("\n", " ")
        source += f"{before} {opener}{tex}{closer} "
        expected.append((tex, display, f"{opener}{tex}{closer}"))
    html = markdown_to_html(source + tail)
    got = shown(html)
    assert len(got) == len(expected)
    for (tex, display), (want, want_display, written) in zip(got, expected, strict=True):
        assert (tex, display) in ((want.strip(), want_display), (written, want_display))


def test_every_formula_in_content_appears_once_as_mathml_with_its_tex() -> None:
    total = 0
    for path in sorted(CONTENT.rglob("*.md")):
        body = body_of(path.read_text(encoding="utf-8"))
        source = [(tex.strip(), display) for tex, display in formulas(_markdown(), body)]
        page = sanitize_html(markdown_to_html(body))
        assert shown(page) == source, path.name
        assert page.count("<math") == len(source), path.name
        total += len(source)
    assert total >= 100


def test_summaries_and_excerpts_keep_plain_tex() -> None:
    html = sanitize_html(
        markdown_to_html(r"损失 \(p_{data}(x)\) 与 \[\mathcal{L}=\sum_i x_i\] 之和")
    )
    text = html_to_text(html)
    assert text == r"损失 \(p_{data}(x)\) 与 \[\mathcal{L}=\sum_i x_i\] 之和"
    for n in range(1, len(text)):
        cut = excerpt(text, n, "")
        assert cut.count("\\(") == cut.count("\\)") and cut.count("\\[") == cut.count("\\]")


MXSS = [
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<math><mtext><table><mglyph><style><!--</style>"
    '<img title="--&gt;&lt;img src=1 onerror=alert(1)&gt;">',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<math href="javascript:alert(1)"><mi>x</mi></math>',
    '<math><annotation-xml encoding="text/html"><script>alert(1)</script></annotation-xml></math>',
    '<math><annotation-xml encoding="text/html"><img src=x onerror=alert(1)></annotation-xml>',
    '<math><maction actiontype="statusline#http://evil"><mtext>x</mtext></maction></math>',
    "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
    '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">',
    '<math><mi style="background:url(javascript:alert(1))" onclick="alert(1)">x</mi></math>',
]


@pytest.mark.parametrize("payload", MXSS)
def test_mathml_mutation_xss_payloads_come_out_harmless(payload: str) -> None:
    clean = sanitize_html(payload)
    again = sanitize_html(clean)
    for out in (clean, again):
        low = out.lower()
        for bad in ("onerror", "onclick", "javascript:", "<script", "<style", "annotation-xml",
                    "maction", "mglyph", "href", "style="):  # fmt: skip
            assert bad not in low, (payload, out)


def test_mathml_from_a_feed_survives_sanitizing() -> None:
    feed = (
        '<p>Energy <math display="inline"><semantics><mrow><mi>E</mi><mo>=</mo><mi>m</mi>'
        "<msup><mi>c</mi><mn>2</mn></msup></mrow>"
        '<annotation encoding="application/x-tex">E=mc^2</annotation></semantics></math> holds</p>'
    )
    clean = sanitize_html(feed)
    assert shown(clean) == [("E=mc^2", False)]
    assert html_to_text(clean) == r"Energy \(E=mc^2\) holds"


def test_katex_and_mathjax_output_is_reduced_to_mathml() -> None:
    katex = (
        '<p>A <span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>x</mi>'
        '</mrow><annotation encoding="application/x-tex">x</annotation></semantics></math></span>'
        '<span class="katex-html" aria-hidden="true"><span class="mord mathnormal" '
        'style="margin-right:0.1em">x</span></span></span> b</p>'
    )
    clean = sanitize_html(katex)
    assert shown(clean) == [("x", False)] and "mathnormal" not in clean
    assert html_to_text(clean) == r"A \(x\) b"
    mathjax2 = (
        '<p>Let <span class="MathJax_Preview">p</span><span class="MathJax">styled junk</span>'
        '<script type="math/tex">p_{data}</script> and '
        '<script type="math/tex; mode=display">\\nosuch</script>.</p>'
    )
    clean = sanitize_html(mathjax2)
    assert shown(clean) == [("p_{data}", False), ("\\[\\nosuch\\]", True)]
    assert "junk" not in clean
    mathjax3 = (
        '<p>Let <mjx-container class="MathJax" jax="CHTML"><mjx-math><mjx-mi>junk</mjx-mi>'
        "</mjx-math><mjx-assistive-mml><math><mi>y</mi></math></mjx-assistive-mml>"
        "</mjx-container> go.</p>"
    )
    clean = sanitize_html(mathjax3)
    assert "<math><mi>y</mi></math>" in clean and "junk" not in clean


def test_converted_mathml_is_well_formed_and_keeps_the_tex() -> None:
    out = tex_to_mathml(r"a<b \text{ and } \frac{1}{2}", display=True)
    assert out is not None
    root = etree.fromstring(out)
    assert root.get("display") == "block"
    assert root.findtext("semantics/annotation") == r"a<b \text{ and } \frac{1}{2}"
    assert tex_to_mathml(r"\frac{1}{2", display=False) is None  # unbalanced braces
    assert tex_to_mathml(r"a & b", display=False) is None  # latex2mathml writes a bare "&"
    assert tex_to_mathml(r"\nosuch{x}", display=False) is None  # left as a command


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # a line of "=" inside an open formula is TeX, not a setext heading underline
        ("\\(x\n=\nx\\)", [("x\n=\nx", False)]),
        # two display formulas on one line are two, not one block "x$$ and $$y"
        ("$$x$$ and $$y$$", [("x", True), ("y", True)]),
        ("$$x$$  $$y$$", [("x", True), ("y", True)]),
    ],
)
def test_formulas_found_by_the_property_test_stay_whole(
    source: str, expected: list[tuple[str, bool]]
) -> None:
    assert shown(markdown_to_html(source)) == expected
    assert "<h1>" not in markdown_to_html(source)
