from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import load
from aggregator.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_bundled_example_loads_with_paths_relative_to_the_file() -> None:
    config = load(ROOT / "config.toml")
    assert config.site.title == "INCOMING TRANSMISSION"
    assert config.site.subtitle == "LATEST UPDATES"
    assert config.content.dir == ROOT / "content"
    assert config.output.dir == ROOT / "public"
    assert config.database.url == f"sqlite:///{ROOT / 'data' / 'aggregator.db'}"
    assert config.feeds[0].url == (ROOT / "examples/feeds/friend.atom").as_uri()
    assert config.email.from_.endswith("<digest@blog.example.org>")


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path, ""))
    assert config.output.dir == tmp_path / "public"
    assert config.database.url == f"sqlite:///{tmp_path / 'data' / 'aggregator.db'}"
    assert config.feeds == ()
    assert config.digest.page_size > 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[site]\ntitel = 'x'\n", "unknown key 'site.titel'"),
        ("[sitee]\n", "unknown section [sitee]"),
        ("[digest]\npage_size = 'ten'\n", "'digest.page_size' must be an integer"),
        ("[digest]\npage_size = 0\n", "'digest.page_size' must be greater than 0"),
        ("[email]\nstarttls = 'yes'\n", "'email.starttls' must be true or false"),
        ("[[feeds]]\nname = 'no url'\n", "missing required key 'feeds[0].url'"),
        ("[[feeds]]\nurl = 'https://a/'\ntags = 'x'\n", "'feeds[0].tags' must be a list"),
        ("[[subscribers]]\nname = 'x'\n", "missing required key 'subscribers[0].email'"),
        ("[site]\ntimezone = 'Mars/Olympus'\n", "'site.timezone' is not a known time zone"),
        ("[site\n", "invalid TOML"),
        ("[daemon]\nsend_interval = -1\n", "'daemon.send_interval' must be 0"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, text))
    assert message in str(err.value)
    assert str(tmp_path / "config.toml") in str(err.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "nope.toml")


def test_site_url_joins_under_base_url(tmp_path: Path) -> None:
    config = load(write(tmp_path, "[site]\nbase_url = 'https://x.org/blog'\n"))
    assert config.site.url("feed.atom") == "https://x.org/blog/feed.atom"
    assert config.site.url("") == "https://x.org/blog/"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[content]\nencoding = "klingon"\n', "'content.encoding' is not a known encoding"),
        ("[content]\nmax_size = 0\n", "'content.max_size' must be greater than 0"),
        ('[content]\npermalink = "/posts/"\n', "'content.permalink' must contain {slug}"),
    ],
)
def test_content_keys_are_checked(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load(write(tmp_path, text))


def test_content_defaults(tmp_path: Path) -> None:
    c = load(write(tmp_path, "")).content
    assert (c.encoding, c.max_size, c.code_placeholder) == ("utf-8", 5 * 1024 * 1024, "[code]")
