"""Run the aggregator CLI with its clock ahead of the wall clock, for subprocess tests.

    python -m tests.shifted_clock OFFSET_FILE --config config.toml daemon

`aggregator.clock.now()` returns the wall clock plus the number of seconds in
OFFSET_FILE, read at every call (missing or empty: 0), so a test can let a
week pass for a running daemon by writing "604800". Only the aggregator's own
clock moves: the scheduler still fires on real time, which is what a test
with a seconds-level schedule wants.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator import clock
from aggregator.cli import main


def shifted(offset_file: Path) -> datetime:
    try:
        offset = float(offset_file.read_text(encoding="utf-8") or 0)
    except (OSError, ValueError):
        offset = 0.0
    return datetime.now(UTC) + timedelta(seconds=offset)


if __name__ == "__main__":
    offset_file = Path(sys.argv[1])
    clock.set_now(lambda: shifted(offset_file))
    sys.argv = ["aggregator", *sys.argv[2:]]
    main()
