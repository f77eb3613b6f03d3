from __future__ import annotations

from aggregator.text import excerpt, html_to_text, markdown_to_html, sanitize_html


def test_math_passes_through_markdown_verbatim() -> None:
    src = (
        r"Loss \( p_{data}_x \) and $z_q = \arg\min_k \|z_e - e_k\|_2$." + "\n\n$$\na_1 * b_2\n$$\n"
    )
    html = markdown_to_html(src)
    assert r"\( p_{data}_x \)" in html
    assert r"$z_q = \arg\min_k \|z_e - e_k\|_2$" in html
    assert "$$\na_1 * b_2\n$$" in html
    assert "<em>" not in html


def test_display_brackets_math_survives() -> None:
    html = markdown_to_html(r"\[ \mathcal{L} = \mathbb{E}_{x} [\log D(x)] \]")
    assert r"\[ \mathcal{L} = \mathbb{E}_{x} [\log D(x)] \]" in html


def test_sanitize_removes_scripts_and_handlers_and_absolutizes_links() -> None:
    dirty = (
        '<p onclick="evil()">Hi <script>alert(1)</script><a href="javascript:x()">j</a>'
        '<a href="../other/">rel</a><img src="img.png" alt="pic"></p><iframe src="x"></iframe>'
    )
    clean = sanitize_html(dirty, "https://blog.example.org/posts/a/")
    assert "script" not in clean
    assert "onclick" not in clean
    assert "javascript:" not in clean
    assert "iframe" not in clean
    assert 'href="https://blog.example.org/posts/other/"' in clean
    assert 'src="https://blog.example.org/posts/a/img.png"' in clean


def test_html_to_text_joins_blocks_and_replaces_code_and_images() -> None:
    html = "<h2>Title</h2><p>One</p><pre><code>x = 1</code></pre><p><img alt='A chart'>Two</p>"
    assert html_to_text(html) == "Title One [code] A chart Two"


def test_excerpt_keeps_short_text_and_cuts_long_text_at_a_word() -> None:
    assert excerpt("short text", 50) == "short text"
    cut = excerpt("alpha beta gamma delta epsilon", 14)
    assert cut == "alpha beta..."
    assert excerpt("a  b\n c", 10) == "a b c"
