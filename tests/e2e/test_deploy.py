"""The deployment files agree with the package: compose file valid against the
compose-spec schema, Dockerfile and compose commands accepted by the console script."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from click.testing import CliRunner

from aggregator.cli import cli
from aggregator.web import HEALTH_PATH

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def dockerfile_instruction(name: str) -> list[str]:
    """The JSON (exec) form of a Dockerfile instruction, e.g. ENTRYPOINT."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    m = re.search(rf"^{name}\s+(\[.*\])\s*$", text, re.M)
    assert m, f"Dockerfile has no {name} in exec form"
    value: list[str] = json.loads(m.group(1))
    return value


def test_compose_file_is_valid_against_the_compose_spec_schema() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    # The file names draft 2019-09 by a URI jsonschema does not know; say it outright.
    errors = [e.message for e in jsonschema.Draft201909Validator(schema).iter_errors(compose())]
    assert errors == []


def test_schema_check_catches_a_wrong_compose_file() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    bad = compose()
    bad["services"]["aggregator"]["healthcheck"]["retries"] = "three"
    bad["services"]["web"]["portz"] = ["80"]
    assert len(list(jsonschema.Draft201909Validator(schema).iter_errors(bad))) >= 2


def test_compose_runs_the_daemon_safely() -> None:
    services = compose()["services"]
    agg = services["aggregator"]
    assert agg["user"] != "root" and not str(agg["user"]).startswith("0")
    assert "./config.toml:/etc/aggregator/config.toml:ro" in agg["volumes"]
    named = set(compose()["volumes"])
    assert {v.split(":")[0] for v in agg["volumes"] if not v.startswith(".")} <= named
    assert HEALTH_PATH in " ".join(agg["healthcheck"]["test"])
    assert "mail" in services["mailpit"]["profiles"]
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))


def test_dockerfile_entrypoint_is_the_console_script_and_commands_parse() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entry = dockerfile_instruction("ENTRYPOINT")
    assert entry[0] in scripts and scripts[entry[0]] == "aggregator.cli:main"
    assert "USER aggregator" in (ROOT / "Dockerfile").read_text()
    for command in (dockerfile_instruction("CMD"), compose()["services"]["aggregator"]["command"]):
        # --help after the real arguments: click still rejects an unknown option or command
        result = CliRunner().invoke(cli, [*entry[1:], *command, "--help"])
        assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(cli, [*entry[1:], "daemon", "--hostname", "x", "--help"])
    assert bad.exit_code == 2


def test_dockerfile_copies_what_exists() -> None:
    copied = re.findall(r"^COPY (.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    sources = [p for line in copied for p in line.split()]
    assert {"pyproject.toml", "aggregator", "templates"} <= set(sources)
    assert all((ROOT / p).exists() for p in sources)


def test_nginx_serves_feed_types_hides_temp_files_and_proxies_the_daemon() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"\\\.atom\$ \{\s*types \{ \} default_type application/atom\+xml;", conf)
    assert "location = /feed.json {\n        types { } default_type application/feed+json;" in conf
    assert "location ~ /\\. {\n        deny all;" in conf
    # unknown addresses get the built 404 page (in the site's language), with status 404
    assert "\n    error_page 404 /404.html;\n" in conf
    port = dockerfile_instruction("CMD")[-1]
    assert f"proxy_pass http://aggregator:{port};" in conf
    assert f"location = {HEALTH_PATH}" in conf
    mounted = compose()["services"]["web"]["volumes"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in mounted
