"""The bundled example's excerpts show math, a code block and hyphenated terms, whole."""

from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import Path

import feedparser
from click.testing import CliRunner

from aggregator.cli import cli


def excerpts(public: Path) -> list[str]:
    out = []
    for page in sorted(public.rglob("index.html")):
        out += [
            html.unescape(m)
            for m in re.findall(r'<p class="excerpt">(.*?)</p>', page.read_text("utf-8"), re.S)
        ]
    return out


def test_example_excerpts_keep_math_code_and_hyphens(example: Path, fixed_now: datetime) -> None:
    result = CliRunner().invoke(cli, ["--config", str(example), "run"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    public = example.parent / "public"
    shown = excerpts(public)
    vq = next(e for e in shown if e.startswith("VQ-VAE 的核心"))  # content/vq-vae-notes.md
    # the formula is shown as MathML, its TeX kept whole as the annotation
    tex = r"z_q = \arg\min_k \|z_e - e_k\|_2"
    assert f'<annotation encoding="application/x-tex">{tex}</annotation>' in vq

    bench = next(e for e in shown if e.startswith("Every model card"))
    for term in ("state-of-the-art", "Anchor-free", "Top-1"):
        assert term in bench  # reading-benchmark-claims.md
    assert not re.search(r"Qwen1(?!\.5-7B-Chat)", bench)  # whole, or not at all

    cache = next(e for e in shown if e.startswith("Here is the whole idea"))
    assert "explanation: [code] If the server" in cache  # notes/tiny-http-cache.md

    for e in shown:
        # every math span that starts in an excerpt also ends there
        assert e.count("\\(") == e.count("\\)"), e
        assert e.count("$") % 2 == 0, e

    # the Atom feed carries the same excerpts, and absolute image URLs
    feed_text = "".join(p.read_text("utf-8") for p in public.rglob("*.atom"))
    summaries = [
        e.summary
        for p in sorted(public.rglob("*.atom"))
        for e in feedparser.parse(p.read_bytes()).entries
    ]
    # feeds' summaries keep the TeX as text (readers that drop MathML show it)
    vq_summary = next(t for t in summaries if t.startswith("VQ-VAE 的核心"))
    assert f"\\({tex}\\)" in vq_summary
    assert 'src="https://blog.example.org/images/codebook.png"' in html.unescape(feed_text)
    assert (public / "images" / "codebook.png").read_bytes() == (
        example.parent / "content" / "images" / "codebook.png"
    ).read_bytes()
