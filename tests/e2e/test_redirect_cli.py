"""`aggregator ingest` when a feed redirects somewhere no feed can be: that
feed fails, named with where it pointed, the others are stored, exit code 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pytest_httpserver import HTTPServer
from werkzeug import Response
from werkzeug.datastructures import Headers

from aggregator.cli import cli
from tests.integration.feedkit import atom


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


class RawLocation(Response):
    """A redirect whose Location goes out as written (werkzeug would parse it)."""

    def get_wsgi_headers(self, environ: Any) -> Headers:
        return Headers(self.headers)


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def write_config(root: Path, feeds: list[str]) -> Path:
    (root / "content").mkdir()
    listed = "".join(f'\n[[feeds]]\nurl = "{url}"\n' for url in feeds)
    config = root / "config.toml"
    config.write_text(
        '[site]\nbase_url = "https://digest.example.org/"\n'
        '[content]\ndir = "content"\n'
        '[database]\nurl = "sqlite:///data/test.db"\n' + listed,
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize(
    "location", ["javascript:alert(1)", "mailto:x@example.org", "http://127.0.0.1:99999/"]
)
def test_ingest_names_the_feed_and_where_it_pointed_and_keeps_the_others(
    httpserver: HTTPServer, tmp_path: Path, location: str
) -> None:
    httpserver.expect_request("/moved").respond_with_handler(
        lambda r: RawLocation("", status=302, headers=[("Location", location)])
    )
    httpserver.expect_request("/fine").respond_with_data(atom(2, prefix="fine"))
    moved, fine = httpserver.url_for("/moved"), httpserver.url_for("/fine")
    config = write_config(tmp_path, [moved, fine])

    result = run(config, "ingest")
    assert result.exit_code == 1, result.output
    assert f"FAILED {moved}: redirected to {location!r}, not followed" in result.output
    assert "Traceback" not in result.output
    assert "feeds   2: 1 fetched, 1 failed; 2 new" in result.output

    built = run(config, "build", "--no-email-preview")
    assert built.exit_code == 0, built.output
    index = (tmp_path / "public" / "index.html").read_text(encoding="utf-8")
    assert "fine entry 0" in index and "fine entry 1" in index
