"""TeX -> MathML converters compared on the formulas of content/ and a seed-like set.

    .venv/bin/python -m bench.math_converters [--katex DIR]

latex2mathml (pure Python, what aggregator.texmath uses) against KaTeX run by
Node (`npm install katex` in DIR; one Node process renders every formula, so
the per-formula time leaves out Node's start-up, printed apart). A formula
counts as rendered correctly when the converter raises nothing, leaves no
TeX command in the output's text (outside the annotation), and the MathML is
well-formed XML. Prints a table; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
from pathlib import Path

from lxml import etree

from aggregator.texmath import _convert
from bench.math_formulas import SEEDLIKE, content_formulas

_RAW = re.compile(r"\\[A-Za-z]")

_KATEX_JS = """
const katex = require(process.argv[2]);
const items = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = [];
const t0 = process.hrtime.bigint();
for (const [tex, display] of items) {
  try {
    out.push([katex.renderToString(tex, {displayMode: display, output: 'mathml',
                                         throwOnError: true, strict: 'ignore'}), '']);
  } catch (e) { out.push(['', String(e.message || e)]); }
}
const ns = Number(process.hrtime.bigint() - t0);
process.stdout.write(JSON.stringify({ns, out}));
"""


def _good(mathml: str) -> bool:
    try:
        root = etree.fromstring(mathml)
    except etree.XMLSyntaxError:
        return False
    for el in root.iter():
        if etree.QName(el).localname == "annotation":
            continue
        if _RAW.search(el.text or "") or _RAW.search(el.tail or ""):
            return False
    return True


def latex2mathml(items: list[tuple[str, bool]]) -> tuple[int, float, list[str]]:
    start = time.perf_counter()
    results = [_convert(tex, display) for tex, display in items]
    ms = (time.perf_counter() - start) * 1000 / len(items)
    bad = [tex for (tex, _), (out, _r) in zip(items, results, strict=True) if not out]
    ok = sum(1 for out, _ in results if out and _good(out))
    return ok, ms, bad


def katex(items: list[tuple[str, bool]], katex_dir: Path) -> tuple[int, float, list[str], float]:
    script = katex_dir / "render.js"
    script.write_text(_KATEX_JS, encoding="utf-8")
    module = str(katex_dir / "node_modules" / "katex")
    start = time.perf_counter()
    done = subprocess.run(
        ["node", str(script), module],
        input=json.dumps(items),
        capture_output=True,
        text=True,
        check=True,
    )
    wall = (time.perf_counter() - start) * 1000
    data = json.loads(done.stdout)
    ms = data["ns"] / 1e6 / len(items)
    ok, bad = 0, []
    for (tex, _), (html, err) in zip(items, data["out"], strict=True):
        m = re.search(r"<math.*</math>", html, re.DOTALL)
        if not err and m and _good(m.group(0)):
            ok += 1
        else:
            bad.append(tex)
    return ok, ms, bad, wall - data["ns"] / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--katex", type=Path, help="a directory where `npm install katex` ran")
    args = parser.parse_args()
    sets = {
        "content/": [(t, d) for t, d, _ in content_formulas()],
        "seed-like": list(SEEDLIKE),
    }
    print("| converter | set | correct / total | ms per formula |")
    print("|---|---|---|---|")
    for name, items in sets.items():
        ok, ms, bad = latex2mathml(items)
        print(f"| latex2mathml | {name} | {ok} / {len(items)} | {ms:.3f} |")
        for tex in bad:
            print(f"|  | not converted | `{tex[:70]}` | |")
        if args.katex:
            ok, ms, bad, startup = katex(items, args.katex)
            print(
                f"| KaTeX (Node) | {name} | {ok} / {len(items)} | {ms:.3f}"
                f" (+ {startup:.0f} ms Node start-up per run) |"
            )
            for tex in bad:
                print(f"|  | not converted | `{tex[:70]}` | |")


if __name__ == "__main__":
    main()
