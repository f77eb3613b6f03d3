"""Write outputs atomically: a reader or web server never sees half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath

from aggregator.errors import DeliveryError


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_outputs(root: Path, files: Mapping[str, bytes]) -> list[str]:
    """Write every file under `root`; skip files whose bytes are unchanged.

    Returns the relative paths written. A path escaping `root` is a bug in a
    renderer and refused.
    """
    written = []
    for rel, data in sorted(files.items()):
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
            raise DeliveryError(f"refusing to write outside the output directory: {rel}")
        target = root.joinpath(*parts)
        try:
            if target.is_file() and target.read_bytes() == data:
                continue
            write_atomic(target, data)
        except OSError as e:
            raise DeliveryError(f"{target}: cannot write: {e.strerror}") from None
        written.append(rel)
    return written


def copy_files(root: Path, files: Mapping[str, Path]) -> list[str]:
    """Copy `files` ({relative path: source file}) under `root`, atomically.

    A file whose bytes are already there is skipped. Returns the relative
    paths written.
    """
    written = []
    for rel, source in sorted(files.items()):
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
            raise DeliveryError(f"refusing to write outside the output directory: {rel}")
        target = root.joinpath(*parts)
        try:
            if (
                target.is_file()
                and target.stat().st_size == source.stat().st_size
                and target.read_bytes() == source.read_bytes()
            ):
                continue
            write_atomic(target, source.read_bytes())
        except OSError as e:
            raise DeliveryError(f"{target}: cannot copy {source}: {e.strerror}") from None
        written.append(rel)
    return written


def remove_stale_temp_files(root: Path, now: datetime, older_than: timedelta) -> int:
    """Delete temp files `write_atomic` left behind when its process was killed.

    Only `.NAME.*.tmp` files older than `older_than` go, so a write in
    progress is never touched. Returns how many were removed.
    """
    if not root.is_dir():
        return 0
    cutoff = (now - older_than).timestamp()
    removed = 0
    for path in root.rglob(".*.tmp"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue  # gone already, or not ours to remove: not worth failing over
    return removed
