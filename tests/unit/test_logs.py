"""Log lines: human or JSON, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from aggregator import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    logs.setup("human", logging.INFO, out)
    yield out
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_json_lines_carry_the_message_and_the_fields(stream: io.StringIO) -> None:
    logs.setup("json", logging.INFO, stream)
    logging.getLogger("aggregator.jobs").warning(
        "ingest failure: %s", "timeout", extra={"source": "https://a.example/feed"}
    )
    line = json.loads(stream.getvalue().strip())
    assert line["level"] == "warning" and line["logger"] == "aggregator.jobs"
    assert line["message"] == "ingest failure: timeout"
    assert line["source"] == "https://a.example/feed"


def test_human_lines_append_fields(stream: io.StringIO) -> None:
    logging.getLogger("aggregator.daemon").info("started", extra={"status": "started"})
    assert stream.getvalue().rstrip().endswith("INFO aggregator.daemon: started status=started")


def test_passwords_in_urls_and_registered_secrets_never_appear(stream: io.StringIO) -> None:
    logs.add_secret("hunter2-smtp-secret")
    log = logging.getLogger("aggregator.x")
    log.error("cannot open postgresql://digest:s3cr3t@db.example/agg")
    log.error(
        "smtp login failed with %s",
        "hunter2-smtp-secret",
        extra={"detail": "pw=hunter2-smtp-secret"},
    )
    logs.setup("json", logging.INFO, stream)
    log.error("again postgresql://digest:s3cr3t@db.example/agg")
    text = stream.getvalue()
    assert "s3cr3t" not in text and "hunter2-smtp-secret" not in text
    assert "postgresql://digest:***@db.example/agg" in text
