"""Write outputs atomically: a reader or web server never sees half a file."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import tempfile
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path, PurePosixPath

from aggregator.errors import DeliveryError

log = logging.getLogger(__name__)


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


#: the name write_atomic's temp file has: "." + the target's name + "." +
#: mkstemp's eight random characters + ".tmp"
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
#: a build removes temp files older than this: a write holds its temp file for
#: a moment (bytes already in memory, one fsync); one this old lost its writer
BUILD_TEMP_AGE = timedelta(minutes=10)


def remove_stale_temp_files(root: Path, older_than: timedelta) -> int:
    """Delete temp files `write_atomic` left behind when its process was killed.

    Only regular files named as write_atomic names them (`.NAME.XXXXXXXX.tmp`)
    and last modified more than `older_than` ago go, so a write in progress
    (another build's, a preview's) is never touched. Ages are measured on the
    file system's clock, which set the files' times. Symlinks are neither
    followed nor removed. Returns how many were removed.
    """
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    for parent, _dirs, names in os.walk(root):
        for name in names:
            if not _TEMP_NAME.fullmatch(name):
                continue
            path = Path(parent, name)
            try:
                st = path.lstat()
                if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue  # gone already, or not ours to remove: not worth failing over
    return removed


def missing_outputs(root: Path) -> str | None:
    """Why the outputs of the last build are not all in `root`, or None if they are.

    Missing: the directory is absent or empty, holds no readable manifest (no
    build wrote it), or lacks a file the manifest lists (a new volume, a
    cleaned directory). Reads the manifest and stats each file; logs nothing
    (the health endpoint asks often).
    """
    try:
        if not any(root.iterdir()):
            return f"the output directory {root} is empty"
    except FileNotFoundError:
        return f"the output directory {root} does not exist"
    except OSError as e:
        return f"the output directory {root} cannot be read: {e.strerror}"
    files, problem = _load_manifest(root)
    if files is None:
        return f"{root} holds no build's outputs ({problem or 'no manifest'})"
    gone = [rel for rel in files if not _is_file_under(root, rel)]
    if not gone:
        return None
    shown = ", ".join(gone[:3]) + (f" and {len(gone) - 3} more" if len(gone) > 3 else "")
    return f"{len(gone)} of the {len(files)} outputs are missing from {root}: {shown}"


def _is_file_under(root: Path, rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        return True  # not ours to look for (read_manifest's users ignore it too)
    return root.joinpath(*parts).is_file()


# -- stale outputs -------------------------------------------------------------
# A build records every file it produced (path and SHA-256 of its bytes) in a
# manifest in the output directory. The next build removes what the previous
# one produced and it no longer does (a tag no post has any more, a page
# beyond the last), and nothing else: a file not in the manifest (the user's
# own), or one whose bytes changed since we wrote it, is never touched.

#: the manifest of the last build, in the output directory
MANIFEST = ".aggregator-manifest.json"
#: files the foundation's builds wrote before there was a manifest (feed pages
#: before RFC 5005 archives); removed by the first build that finds no manifest
_LEGACY = re.compile(r"feed/page-[0-9]+\.atom")


def sha256_bytes(data: bytes) -> str:
    """The hex SHA-256 of `data`, as the manifest records it."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file's bytes, read in chunks."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_manifest(root: Path) -> dict[str, str] | None:
    """The last build's {relative path: sha256}; None when there is none.

    A manifest that cannot be read or parsed counts as none (nothing is
    removed on its word); the build then writes a good one.
    """
    files, problem = _load_manifest(root)
    if problem is not None:
        log.warning("%s: %s, ignored (no stale output removed this time)", root / MANIFEST, problem)
    return files


def _load_manifest(root: Path) -> tuple[dict[str, str] | None, str | None]:
    """(the manifest's files, None), (None, None) when there is none, or
    (None, what is wrong with it)."""
    path = root / MANIFEST
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as e:
        return None, f"unreadable: {e}"
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        return None, "not a manifest"
    return dict(files), None


def write_manifest(root: Path, files: Mapping[str, str]) -> None:
    """Record {relative path: sha256} as the build's manifest, atomically."""
    doc = {"version": 1, "files": dict(sorted(files.items()))}
    data = json.dumps(doc, ensure_ascii=False, indent=0).encode("utf-8")
    try:
        write_atomic(root / MANIFEST, data)
    except OSError as e:
        raise DeliveryError(f"{root / MANIFEST}: cannot write: {e.strerror}") from None


def remove_stale_outputs(root: Path, outputs: Mapping[str, bytes | Path]) -> list[str]:
    """Remove the files the last build produced and this one did not; record this one's.

    `outputs` is every file this build produced, already in place: {relative
    path: its bytes, or the source file it was copied from}. A stale file is
    removed only if its bytes are still what the last build wrote; emptied
    directories go with it. Returns the relative paths removed.

    Crash-safe: the manifest written before removing covers both builds'
    files, so a build killed halfway leaves nothing untracked.
    """
    produced = {
        rel: sha256_file(v) if isinstance(v, Path) else sha256_bytes(v)
        for rel, v in outputs.items()
    }
    previous = read_manifest(root)
    if previous is None:
        previous = _legacy_outputs(root, produced)
    stale = sorted(set(previous) - set(produced))
    if stale and {**previous, **produced} != previous:
        write_manifest(root, {**previous, **produced})
    removed = [rel for rel in stale if _remove_if_ours(root, rel, previous[rel])]
    if previous != produced:
        write_manifest(root, produced)
    return removed


def _legacy_outputs(root: Path, produced: Mapping[str, str]) -> dict[str, str]:
    """Files an older build wrote before manifests, with their current hashes."""
    feed_dir = root / "feed"
    if not feed_dir.is_dir():
        return {}
    found = {}
    for path in feed_dir.iterdir():
        rel = f"feed/{path.name}"
        if _LEGACY.fullmatch(rel) and rel not in produced and path.is_file():
            found[rel] = sha256_file(path)
    return found


def _remove_if_ours(root: Path, rel: str, digest: str) -> bool:
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts or rel == MANIFEST:
        log.warning("%s: ignoring a manifest entry outside the output directory: %s", root, rel)
        return False
    target = root.joinpath(*parts)
    try:
        if target.is_symlink() or not target.is_file():
            return False  # gone already, or not a file we wrote
        if sha256_file(target) != digest:
            log.info("%s: kept: changed since a build wrote it", target)
            return False
        target.unlink()
    except OSError as e:
        log.warning("%s: cannot remove a stale output: %s", target, e.strerror)
        return False
    # Directories the removal emptied go too (tags/<old tag>/); rmdir refuses
    # any that still hold something.
    parent = target.parent
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent
    return True
