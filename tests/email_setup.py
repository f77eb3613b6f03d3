"""Helpers for the email tests: point the example's config at a test SMTP server."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from aggregator import config as config_mod
from aggregator.config import Config


def configure(
    config_path: Path,
    port: int,
    subscribers: Sequence[tuple[str, str]] = (),
    **email: object,
) -> Config:
    """Rewrite the example's config.toml: SMTP port, [email] keys, subscribers."""
    text = config_path.read_text(encoding="utf-8")
    email = {"smtp_port": port, "rate_limit": 0.0, "retry_backoff": 0.01, **email}
    for key, value in email.items():
        toml = _toml(value)
        line = f"{key} = {toml}"
        text, n = re.subn(rf"(?m)^{key} = .*$", line.replace("\\", "\\\\"), text, count=1)
        if n == 0:
            text = text.replace("[email]\n", f"[email]\n{key} = {toml}\n", 1)
    if subscribers:
        text = text.split("[[subscribers]]")[0]
        for address, name in subscribers:
            text += f"\n[[subscribers]]\nemail = {_toml(address)}\nname = {_toml(name)}\n"
    config_path.write_text(text, encoding="utf-8")
    return config_mod.load(config_path)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # JSON's escapes (\\n, \\uXXXX, ...) are valid in TOML basic strings.
    return json.dumps(str(value), ensure_ascii=True)


def set_site_title(config_path: Path, title: str) -> Config:
    """Give the site a new title (it goes into the Subject and List-Id)."""
    text = config_path.read_text(encoding="utf-8")
    text = re.sub(
        r'(?m)^title = "INCOMING TRANSMISSION"$', lambda _m: f"title = {_toml(title)}", text
    )
    config_path.write_text(text, encoding="utf-8")
    return config_mod.load(config_path)


def set_site_language(config_path: Path, language: str, timezone: str | None = None) -> Config:
    """Set [site] language (and timezone): the email's words and dates follow them."""
    text = config_path.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^language = ".*"$', f"language = {_toml(language)}", text, count=1)
    if timezone:
        text = re.sub(r'(?m)^timezone = ".*"$', f"timezone = {_toml(timezone)}", text, count=1)
    config_path.write_text(text, encoding="utf-8")
    return config_mod.load(config_path)
