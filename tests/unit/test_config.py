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
        ('[email]\nschedule = "someday"\n', "'email.schedule' is not a schedule: 'someday'"),
        ("[email]\nsmtp_port = 0\n", "'email.smtp_port' must be between 1 and 65535, not 0"),
        ("[email]\nsmtp_port = 65536\n", "'email.smtp_port' must be between 1 and 65535"),
        ("[daemon]\nport = 70000\n", "'daemon.port' must be between 1 and 65535, not 70000"),
        (
            '[email]\nsmtp_host = ""\n[[subscribers]]\nemail = "a@example.com"\n',
            "'email.smtp_host' is empty, but [[subscribers]] lists 1 address",
        ),
        ('[email]\nsmtp_host = "smtp.example.org "\n', "'email.smtp_host' contains a space"),
        (
            '[[feeds]]\nurl = "https://a.example/feed"\nname = "Bad\\u0001Name"\n',
            "'feeds[0].name' holds a control character",
        ),
        ('[site]\ntitle = "T\\u009b"\n', "'site.title' holds a control character"),
        (
            '[[feeds]]\nurl = "https://a.example/feed"\ntags = ["ok", "x\\u0007"]\n',
            "'feeds[0].tags' holds a control character",
        ),
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


def test_an_empty_smtp_host_is_fine_with_no_one_to_send_to(tmp_path: Path) -> None:
    assert load(write(tmp_path, '[email]\nsmtp_host = ""\n')).email.smtp_host == ""


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "example.org/feed.xml",
            "nor an existing file ({tmp}/example.org/feed.xml);"
            " did you mean https://example.org/feed.xml?",
        ),
        ("example.org", "did you mean https://example.org?"),
        ("localhost:8000/feed", "did you mean http://localhost:8000/feed?"),
        ("not a url", "nor an existing file ({tmp}/not a url)"),
        ("friend.atom", "nor an existing file ({tmp}/friend.atom)"),
        ("feeds", "it is a folder, not a feed file: {tmp}/feeds"),
        ("ftp://example.org/feed.xml", "ftp: is not a scheme feeds are fetched by"),
        ("javascript:alert(1)", "javascript: is not a scheme feeds are fetched by"),
        ("feed://example.org/rss", "did you mean https://example.org/rss?"),
        ("https://", "it has no host (write https://host/path)"),
        ("http:/example.org/feed", "it has no host"),
        ("http://example.org:99999/feed", "it is not a valid URL (Port out of range"),
        ("http://[::1/feed", "it is not a valid URL"),
        ("", "it is empty"),
        (" https://example.org/feed", "it starts or ends with a space"),
        ("https://example.org/\\u0001feed", "it contains a control character"),
    ],
)
def test_a_feed_url_that_cannot_be_fetched_names_its_key(
    tmp_path: Path, url: str, message: str
) -> None:
    (tmp_path / "feeds").mkdir()
    text = f'[[feeds]]\nurl = "https://example.org/ok.xml"\n\n[[feeds]]\nurl = "{url}"\n'
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, text))
    assert f"{tmp_path / 'config.toml'}: 'feeds[1].url' is not a feed address" in str(err.value)
    assert message.format(tmp=tmp_path) in str(err.value)


def test_feed_urls_that_can_be_read_load(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "local.atom").write_text("<feed/>", encoding="utf-8")
    (tmp_path / "feeds" / "other.atom").write_text("<feed/>", encoding="utf-8")
    (tmp_path / "example.org").mkdir()  # a folder that happens to look like a host
    (tmp_path / "example.org" / "feed.xml").write_text("<rss/>", encoding="utf-8")
    urls = [
        "feeds/local.atom",
        str(tmp_path / "feeds" / "other.atom"),
        "example.org/feed.xml",
        "file:///srv/feeds/not-there-yet.atom",  # file: is taken as written
        "http://intranet/feed",
        "https://例子.测试/feed.xml",
        "https://example.org/feed?format=atom&x=a%20b",
    ]
    text = "".join(f'[[feeds]]\nurl = "{u}"\n' for u in urls)
    feeds = load(write(tmp_path, text)).feeds
    assert [f.url for f in feeds] == [
        (tmp_path / "feeds" / "local.atom").as_uri(),
        (tmp_path / "feeds" / "other.atom").as_uri(),
        (tmp_path / "example.org" / "feed.xml").as_uri(),
        *urls[3:],
    ]
