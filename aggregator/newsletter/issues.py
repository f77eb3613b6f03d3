"""Issues of the email digest: their key, their window, their subject, their size.

Pure functions, no IO: compose.py reads the store and send.py the clock,
and they hand the values in.

Theory of operation:

- An issue's key is the ISO week of the moment it is composed, in [site]
  timezone ("2026-W47"). Sending twice in one week therefore resumes the
  same stored issue instead of composing a second one.
- Each issue records a cut-off (the moment it was composed). The next issue
  holds the entries *first seen* after the latest cut-off, up to its own:
  a week without sending loses nothing (the window simply grows) and
  nothing repeats. Keying on first_seen rather than the published date
  means a post back-dated by its author, or a feed fetched late, still
  reaches the next issue.
- An entry published more than `max_age` before the issue is left out even
  when first seen in the window: a newly added feed brings its whole back
  catalogue at once, and that must not flood the email.
- The HTML part must stay under Gmail's clipping threshold. `fit` finds how
  many of the newest entries fit, given a function that measures a
  rendering; the email then ends with "N more in the web archive".

Not here: rendering (render/email.py), sending (send.py, smtp.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aggregator.model import StoredEntry

_KEY = re.compile(r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$")


def issue_key(now: datetime, tz: ZoneInfo) -> str:
    """The key of the issue composed at `now`: its ISO week in `tz`, like 2026-W47."""
    year, week, _ = now.astimezone(tz).isocalendar()
    return f"{year}-W{week:02d}"


def valid_key(key: str) -> bool:
    """True for a key of the form issue_key makes (also used as a file name)."""
    return bool(_KEY.match(key))


def window(
    visible: Sequence[StoredEntry],
    previous_cutoff: datetime | None,
    cutoff: datetime,
    max_age: timedelta,
) -> list[StoredEntry]:
    """The entries of the issue cut at `cutoff`, in the order given (newest first).

    An entry belongs when it was first seen after the previous issue's
    cut-off (any time, for the first issue) and not after this one's, and
    was published no earlier than `max_age` before `cutoff`.
    """
    oldest = cutoff - max_age
    return [
        s
        for s in visible
        if (previous_cutoff is None or s.first_seen > previous_cutoff)
        and s.first_seen <= cutoff
        and s.entry.published >= oldest
    ]


_CONTROL = re.compile(r"\s+")


def header_text(value: str) -> str:
    """`value` made safe for one header line: control characters (CR, LF, NUL,
    tabs, the C1 range, line and paragraph separators) become spaces, runs of
    white space fold to one."""
    cleaned = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in value)
    return _CONTROL.sub(" ", cleaned).strip()


def subject(template: str, *, title: str, count: int, issue: str) -> str:
    """The Subject header from the configured template; always one safe line.

    `{title}`, `{count}` and `{issue}` are filled in; any other `{...}` is
    left as written rather than failing a weekly send over a typo.
    """
    values = {"title": header_text(title), "count": str(count), "issue": issue}
    filled = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)
    return header_text(filled)


def fit(total: int, measure: Callable[[int], int], limit: int) -> int:
    """How many of `total` entries (newest first) fit in `limit` bytes.

    `measure(n)` is the size of the email showing the first n entries (and,
    when n < total, the "N more" line). Sizes grow with n, so a binary search
    finds the largest n that fits; the first guess is proportional, which
    usually lands within a step or two. Returns 0 when not even one fits.
    """
    if total == 0 or measure(total) <= limit:
        return total
    lo, hi = 0, total  # measure(lo) fits (0 always shown), measure(hi) does not
    size_all = measure(total)
    guess = max(1, min(total - 1, total * limit // size_all))
    while hi - lo > 1:
        mid = guess if lo < guess < hi else (lo + hi) // 2
        guess = 0
        if measure(mid) <= limit:
            lo = mid
        else:
            hi = mid
    return lo
