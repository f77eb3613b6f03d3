"""The email's formula images: matplotlib's mathtext on the formulas of content/
and the seed-like set (bench/math_formulas.py).

    .venv/bin/python -m bench.math_images

A formula counts as drawn when aggregator.mathspans.render_png returns an
image (mathtext parsed it); time per formula is the first draw of each formula
in one process, after one warm-up draw (the first draw loads the fonts:
printed apart). Prints a table; nothing is written.
"""

from __future__ import annotations

import statistics
import time

from aggregator.mathspans import render_png
from bench.math_formulas import SEEDLIKE, content_formulas


def main() -> None:
    start = time.perf_counter()
    render_png("x", False)
    print(
        f"first draw in the process (fonts loaded): {1000 * (time.perf_counter() - start):.0f} ms"
    )
    sets = {
        "content/": [(tex, display) for tex, display, _ in content_formulas()],
        "seed-like": list(SEEDLIKE),
    }
    print("| set | drawn / total | ms per formula (mean, median) | PNG bytes (mean, median, max) |")
    print("|---|---|---|---|")
    for name, items in sets.items():
        unique = list(dict.fromkeys((t.strip(), d) for t, d in items))
        times, sizes, failed = [], [], []
        for tex, display in unique:
            t0 = time.perf_counter()
            image = render_png(tex, display)
            times.append(1000 * (time.perf_counter() - t0))
            if image is None:
                failed.append(tex)
            else:
                sizes.append(len(image.png))
        print(
            f"| {name} | {len(sizes)} / {len(unique)} | {statistics.mean(times):.1f}, "
            f"{statistics.median(times):.1f} | {statistics.mean(sizes):.0f}, "
            f"{statistics.median(sizes):.0f}, {max(sizes)} |"
        )
        for tex in failed:
            print(f"|  | not drawn | `{tex[:70]}` | |")


if __name__ == "__main__":
    main()
