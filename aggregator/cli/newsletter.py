"""The newsletter's commands: send, preview, subscribers, unsubscribe."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aggregator import app
from aggregator.cli.base import EXIT_FAILED, SEND_LOCK_WAIT, Context, cli, errors_to_exit, locked
from aggregator.model import SendReport, SubscriberStatus


def _print_send(report: SendReport) -> None:
    if report.empty:
        click.echo("send: nothing new since the last issue; not sent (email.send_empty = false)")
        return
    what = "composed" if report.composed else "resumed"
    if report.dry_run:
        click.echo(f"send: issue {report.issue}: dry run, {report.sent} .eml files written")
        for path in report.written:
            click.echo(f"  {path}")
        return
    click.echo(
        f"send: issue {report.issue} ({what}): {report.sent} sent, {report.already} had it"
        + (f", {report.busy} left to another sender" if report.busy else "")
        + (f", {len(report.failures)} failed" if report.failures else "")
        + (f", {len(report.uncertain)} uncertain" if report.uncertain else "")
    )
    for f in report.failures:
        click.echo(f"FAILED {f}", err=True)
    for email in report.uncertain:
        click.echo(
            f"UNCERTAIN {email}: interrupted while handing the message to the server;"
            f" not resent (aggregator send --issue {report.issue} --resend-uncertain)",
            err=True,
        )


@cli.command()
@click.option("--issue", "issue_key", help="Send (or resume) this issue, like 2026-W47.")
@click.option("--dry-run", is_flag=True, help="Write .eml files instead of sending.")
@click.option(
    "--outbox",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where --dry-run writes (default: <output dir>/outbox).",
)
@click.option(
    "--resend-uncertain",
    is_flag=True,
    help="Also resend deliveries interrupted mid-handover (may duplicate).",
)
@click.pass_obj
@errors_to_exit
def send(
    obj: Context,
    issue_key: str | None,
    dry_run: bool,
    outbox: Path | None,
    resend_uncertain: bool,
) -> None:
    """Send this week's email issue to every subscriber who has not had it.

    Composes the issue (entries first seen since the last one) on first use
    and stores it; running again resumes without sending anyone a second copy.

    Example: aggregator send --dry-run --outbox /tmp/outbox
    """
    config = obj.config()

    def progress(done: int, total: int, email: str, what: str) -> None:
        if sys.stderr.isatty() or done == total or done % 50 == 0:
            click.echo(f"  [{done}/{total}] {email}: {what}", err=True)

    # A cron `send` that meets a slow `run` waits for it rather than skipping
    # the week; the deliveries table is what keeps two senders from doubling up.
    with locked(config, wait=SEND_LOCK_WAIT), app.open_store(config) as store:
        report = app.send(
            config, store, issue_key=issue_key, dry_run=dry_run, outbox=outbox,
            resend_uncertain=resend_uncertain, progress=progress,
        )  # fmt: skip
    _print_send(report)
    if report.failures:
        sys.exit(EXIT_FAILED)


@cli.command()
@click.option("--issue", "issue_key", help="A stored issue, like 2026-W47 (default: the next).")
@click.pass_obj
@errors_to_exit
def preview(obj: Context, issue_key: str | None) -> None:
    """Write an issue's email HTML and text to the output directory and print their paths.

    Example: aggregator preview --issue 2026-W47
    """
    config = obj.config()
    with app.open_store(config) as store:
        paths = app.preview(config, store, issue_key)
    for path in paths:
        click.echo(str(path))


@cli.group()
def subscribers() -> None:
    """List, add and remove email subscribers.

    Example: aggregator subscribers list
    """


@subscribers.command("list")
@click.pass_obj
@errors_to_exit
def subscribers_list(obj: Context) -> None:
    """Show every subscriber with their status.

    Example: aggregator subscribers list
    """
    config = obj.config()
    with app.open_store(config) as store:
        subs = app.subscribers(config, store)
    for sub in subs:
        origin = "config.toml" if sub.in_config else "database"
        name = f" ({sub.name})" if sub.name else ""
        click.echo(f"{sub.status:12}  {sub.email}{name}  [{origin}] {sub.note}")
    active = sum(1 for s in subs if s.status == SubscriberStatus.ACTIVE)
    click.echo(f"{len(subs)} subscribers, {active} active")


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="The name shown in the To header.")
@click.pass_obj
@errors_to_exit
def subscribers_add(obj: Context, email: str, name: str) -> None:
    """Add a subscriber (or make an unsubscribed one active again).

    Example: aggregator subscribers add ada@example.com --name "Ada L."
    """
    config = obj.config()
    with app.open_store(config) as store:
        sub = app.add_subscriber(config, store, email, name)
    click.echo(f"{sub.status}: {sub.email}")


@subscribers.command("remove")
@click.argument("email")
@click.pass_obj
@errors_to_exit
def subscribers_remove(obj: Context, email: str) -> None:
    """Stop sending to a subscriber (kept as unsubscribed, with their history).

    Example: aggregator subscribers remove ada@example.com
    """
    config = obj.config()
    with app.open_store(config) as store:
        sub = app.remove_subscriber(config, store, email)
    if sub is None:
        raise click.ClickException(f"no subscriber {email}")
    click.echo(f"{sub.status}: {sub.email}")
    if sub.in_config:
        click.echo("note: the address is still listed in config.toml; remove it there too")


@cli.command()
@click.argument("token_or_email")
@click.pass_obj
@errors_to_exit
def unsubscribe(obj: Context, token_or_email: str) -> None:
    """Unsubscribe someone by their unsubscribe token or their address.

    Example: aggregator unsubscribe reader@example.com
    """
    config = obj.config()
    with app.open_store(config) as store:
        sub = app.unsubscribe(config, store, token_or_email)
    if sub is None:
        raise click.ClickException(f"no subscriber with token or address {token_or_email!r}")
    click.echo(f"{sub.status}: {sub.email}")
