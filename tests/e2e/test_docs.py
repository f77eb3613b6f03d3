"""The README stays true: its test command is what CI runs; every command is documented."""

from __future__ import annotations

import re
from pathlib import Path

from aggregator.cli import cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", README)


def test_readme_gives_two_setup_commands_and_ci_runs_the_test_one() -> None:
    commands = readme_commands()
    run_cmd = next(c for c in commands if "aggregator run" in c)
    test_cmd = next(c for c in commands if "pytest" in c)
    assert "pip install" in run_cmd and "pip install" in test_cmd
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    # CI installs quietly but otherwise runs the README's command verbatim.
    assert test_cmd in ci


def test_every_command_has_help_and_is_in_the_readme() -> None:
    for name, command in cli.commands.items():
        assert command.help, f"aggregator {name} has no help"
        assert "Example:" in command.help, f"aggregator {name} help has no example"
        assert f"aggregator {name}" in README or f"] {name}" in README, f"{name} not in README"
