from __future__ import annotations

import pytest

from aggregator.text import (
    excerpt,
    first_heading,
    html_to_text,
    markdown_to_html,
    rebase_links,
    sanitize_html,
    split_more,
)


def test_math_becomes_mathml_with_its_tex_untouched_by_markdown() -> None:
    src = r"Loss \( p_{data} \) and $z_q = \arg\min_k \|z_e - e_k\|_2$." + "\n\n$$\na_1 * b_2\n$$\n"
    html = markdown_to_html(src)
    assert '<annotation encoding="application/x-tex">p_{data}</annotation>' in html
    assert r"z_q = \arg\min_k \|z_e - e_k\|_2</annotation>" in html
    assert '<math display="block">' in html and "a_1 * b_2</annotation>" in html
    assert "<em>" not in html


def test_display_brackets_inside_a_paragraph_become_display_math() -> None:
    html = markdown_to_html(r"写成 \[\mathbf{x}_t=(1-t)\mathbf{x}_0+t\varepsilon\] 之后")
    assert html.startswith('<p>写成 <math display="block">')
    assert r"\mathbf{x}_t=(1-t)\mathbf{x}_0+t\varepsilon</annotation>" in html
    assert "<em>" not in html and html.endswith(" 之后</p>\n")


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


PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.mark.parametrize(
    "src",
    [
        PNG,
        "data:image/jpeg;base64,/9j/4AAQSkZJRg==",
        "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
        "data:image/webp;base64,UklGRhoAAABXRUJQ",
        "DATA:Image/PNG;base64,iVBORw0KGgo=",
    ],
)
def test_raster_data_images_survive_in_img_src(src: str) -> None:
    clean = sanitize_html(f'<p><img src="{src}" alt="dot"></p>', "https://blog.example.org/a/")
    assert f'<img src="{src}" alt="dot">' in clean


@pytest.mark.parametrize(
    "dirty",
    [
        '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9ImFsZXJ0KDEpIi8+">',
        '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
        '<img src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">',
        '<img src="data:image/pngx;base64,AAAA">',
        '<img src=" &#10;data:image/svg+xml,<svg/onload=alert(1)>">',
        f'<a href="{PNG}">a link to a picture opens it as a page</a>',
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        '<a href="da&#9;ta:text/html,<script>alert(1)</script>">x</a>',
        '<a href="&#100;ata:text/html,x">x</a>',
        # with a literal "data:" elsewhere, the same disguises meet the filter
        '<p>data: below</p><a href="&#100;ata:text/html,x">x</a>',
        '<p>data: below</p><a href="da&#9;ta:text/html,x">x</a>',
        '<p>data: below</p><img src="&#x20;data:image/svg+xml,x">',
    ],
)
def test_every_other_data_url_is_dropped(dirty: str) -> None:
    clean = sanitize_html(dirty, "https://blog.example.org/a/")
    clean = clean.replace("<p>data: below</p>", "")
    assert "data:" not in clean.lower() and "svg" not in clean and "script" not in clean
    assert "<img" in clean or "<a" in clean  # the element stays, without its URL


def test_html_to_text_joins_blocks_and_replaces_code_and_images() -> None:
    html = "<h2>Title</h2><p>One</p><pre><code>x = 1</code></pre><p><img alt='A chart'>Two</p>"
    assert html_to_text(html) == "Title One [code] A chart Two"


def test_excerpt_keeps_short_text_and_cuts_long_text_at_a_word() -> None:
    assert excerpt("short text", 50) == "short text"
    cut = excerpt("alpha beta gamma delta epsilon", 14)
    assert cut == "alpha beta..."
    assert excerpt("a  b\n c", 10) == "a b c"


def test_markdown_tables_footnotes_strikethrough_and_task_lists() -> None:
    html = markdown_to_html(
        "| a | b |\n|---|---|\n| 1 | 2 |\n\nSee~~old~~ this[^n].\n\n"
        "- [x] done\n- [ ] todo\n\n[^n]: The note.\n"
    )
    assert "<table>" in html and "<td>1</td>" in html
    assert "<s>old</s>" in html
    assert 'class="footnote-ref"' in html and "The note." in html
    text = html_to_text(sanitize_html(html))
    assert "☑ done" in text and "☐ todo" in text


def test_shell_dollars_in_code_stay_code_and_prices_are_not_math() -> None:
    html = markdown_to_html(
        '```bash\nlocal f="$HOME/notebook/$(date +%F).md"\n```\n\n'
        "It costs $5 or $10, and `$PATH` is set; $x$ is math.\n"
    )
    assert '<pre><code class="language-bash">local f=&quot;$HOME/notebook/$(date +%F).md' in html
    assert "It costs $5 or $10" in html
    assert "<code>$PATH</code>" in html
    assert html.count("<math") == 1 and '<annotation encoding="application/x-tex">x<' in html


def test_raw_html_in_a_post_is_sanitized() -> None:
    html = markdown_to_html('Hi <img src="x.png" onerror="steal()">\n\n<script>alert(1)</script>\n')
    clean = sanitize_html(html, "https://blog.example.org/posts/a/")
    assert "onerror" not in clean and "<script" not in clean
    assert 'src="https://blog.example.org/posts/a/x.png"' in clean


def test_text_keeps_math_whole_and_inline_code_in_backticks() -> None:
    html = markdown_to_html(r"Loss \( p_{data}_x \) with `torch.cdist` and ![A chart](c.png)")
    assert html_to_text(html) == r"Loss \( p_{data}_x \) with `torch.cdist` and A chart"
    assert html_to_text("<pre><code>x</code></pre>", "〔代码〕") == "〔代码〕"


def test_first_heading_and_more_marker() -> None:
    html = markdown_to_html("Intro *here*.\n\n## The *real* title\n\nBody\n")
    assert first_heading(html) == "The real title"
    assert first_heading("<p>none</p>") is None
    html = markdown_to_html("Lead para.\n\n<!--more-->\n\nRest.\n\n```\n<!--more-->\n```\n")
    before = split_more(html)
    assert before is not None and "Lead para." in before and "Rest." not in before
    assert split_more(markdown_to_html("```\n<!--more-->\n```\n")) is None


def test_rebase_links_images_by_folder_and_links_by_permalink() -> None:
    html = (
        '<p><img src="images/a.png"><a href="../other/">o</a><a href="#fn1">f</a>'
        '<a href="data.csv">d</a><a href="https://x.org/">x</a></p>'
    )
    out = rebase_links(
        html,
        href_base="https://b.org/posts/my-post/",
        src_base="https://b.org/notes/",
        is_file=lambda link: link == "data.csv",
    )
    assert 'src="https://b.org/notes/images/a.png"' in out
    assert 'href="https://b.org/posts/other/"' in out
    assert 'href="https://b.org/posts/my-post/#fn1"' in out
    assert 'href="https://b.org/notes/data.csv"' in out
    assert 'href="https://x.org/"' in out
