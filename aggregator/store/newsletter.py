"""The newsletter's tables: subscribers (config.toml's list and sign-ups),
composed issues, and deliveries, the ledger that makes sending exactly-once
per (issue, subscriber): each is claimed by one INSERT on its primary key
before the SMTP transaction and moved on by compare-and-set updates, so two
senders never both send it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from aggregator.model import Delivery, DeliveryStatus, Issue, Subscriber, SubscriberStatus
from aggregator.store.base import StoreBase, _insert
from aggregator.store.schema import deliveries, issues, subscribers


class NewsletterMixin(StoreBase):
    """Subscribers, issues and the deliveries ledger."""

    # -- subscribers ----------------------------------------------------------

    def sync_subscribers(
        self, listed: Sequence[tuple[str, str]], new_token: Callable[[], str], now: datetime
    ) -> None:
        """Make the database agree with config.toml's [[subscribers]] (email, name).

        A listed address is added (active, with a fresh token) or gets its name
        from the config; its status is never changed, so someone who
        unsubscribed stays unsubscribed. An address that leaves config.toml is
        marked unsubscribed ("removed from config.toml"); listed again, it is
        active again. Rows are never deleted: deliveries refer to them.
        """
        wanted = {email.lower(): (email, name) for email, name in listed}
        with self._tx() as conn:
            rows = {r.email_key: r for r in conn.execute(select(subscribers)).all()}
            for key, (email, name) in wanted.items():
                row = rows.get(key)
                if row is None:
                    # DO NOTHING: another process (a second `send`, the daemon)
                    # may add the same address at the same moment.
                    conn.execute(
                        _insert(conn, subscribers).values(
                            email=email, email_key=key, name=name, token=new_token(),
                            status=str(SubscriberStatus.ACTIVE), in_config=True,
                            note="listed in config.toml", created=now, updated=now,
                        ).on_conflict_do_nothing()
                    )  # fmt: skip
                    continue
                values: dict[str, Any] = {}
                if row.name != name:
                    values["name"] = name
                if not row.in_config:
                    values["in_config"] = True
                    if row.note == _REMOVED_FROM_CONFIG:
                        values.update(status=str(SubscriberStatus.ACTIVE), note="listed again")
                if values:
                    conn.execute(
                        update(subscribers)
                        .where(subscribers.c.id == row.id)
                        .values(updated=now, **values)
                    )
            for key, row in rows.items():
                if row.in_config and key not in wanted:
                    values = {"in_config": False, "updated": now}
                    if row.status == SubscriberStatus.ACTIVE:
                        values.update(
                            status=str(SubscriberStatus.UNSUBSCRIBED), note=_REMOVED_FROM_CONFIG
                        )
                    conn.execute(
                        update(subscribers).where(subscribers.c.id == row.id).values(**values)
                    )

    def add_subscriber(self, email: str, name: str, token: str, now: datetime) -> Subscriber:
        """Add a subscriber, or make an existing one active again (an admin's decision)."""
        key = email.lower()
        with self._tx() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.email_key == key)).first()
            if row is None:
                conn.execute(
                    subscribers.insert().values(
                        email=email, email_key=key, name=name, token=token,
                        status=str(SubscriberStatus.ACTIVE), in_config=False,
                        note="added by admin", created=now, updated=now,
                    )
                )  # fmt: skip
            else:
                conn.execute(
                    update(subscribers)
                    .where(subscribers.c.id == row.id)
                    .values(
                        status=str(SubscriberStatus.ACTIVE),
                        name=name or row.name,
                        note="added by admin",
                        updated=now,
                    )
                )
            new = conn.execute(select(subscribers).where(subscribers.c.email_key == key)).one()
        return _subscriber(new)

    def subscribers(self, status: SubscriberStatus | None = None) -> list[Subscriber]:
        """Subscribers in the order they were added, optionally of one status."""
        q = select(subscribers).order_by(subscribers.c.id)
        if status is not None:
            q = q.where(subscribers.c.status == str(status))
        with self._tx() as conn:
            return [_subscriber(r) for r in conn.execute(q).all()]

    def subscriber_by_token(self, token: str) -> Subscriber | None:
        with self._tx() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.token == token)).first()
        return _subscriber(row) if row is not None else None

    def subscriber_by_email(self, email: str) -> Subscriber | None:
        with self._tx() as conn:
            row = conn.execute(
                select(subscribers).where(subscribers.c.email_key == email.lower())
            ).first()
        return _subscriber(row) if row is not None else None

    def set_subscriber_status(
        self, subscriber_id: int, status: SubscriberStatus, note: str, now: datetime
    ) -> Subscriber:
        """Change a subscriber's status; the same status again changes nothing."""
        with self._tx() as conn:
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id, subscribers.c.status != str(status))
                .values(status=str(status), note=note, updated=now)
            )
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).one()
        return _subscriber(row)

    # -- issues ---------------------------------------------------------------

    def add_issue(self, issue: Issue) -> tuple[Issue, bool]:
        """Store a composed issue unless one with its key exists.

        Returns the stored issue and whether it was this one: two senders
        composing the same week both end up with the first one stored.
        """
        values = {f: getattr(issue, f) for f in _ISSUE_FIELDS}
        with self._tx() as conn:
            # RETURNING, not rowcount: psycopg reports -1 for an INSERT's rowcount.
            added = conn.execute(
                _insert(conn, issues)
                .values(**values)
                .on_conflict_do_nothing()
                .returning(issues.c.key)
            ).first()
            row = conn.execute(select(issues).where(issues.c.key == issue.key)).one()
        return _issue(row), added is not None

    def issue(self, key: str) -> Issue | None:
        with self._tx() as conn:
            row = conn.execute(select(issues).where(issues.c.key == key)).first()
        return _issue(row) if row is not None else None

    def latest_issue(self) -> Issue | None:
        """The issue with the latest cut-off: where the next issue's window starts."""
        with self._tx() as conn:
            row = conn.execute(select(issues).order_by(issues.c.cutoff.desc()).limit(1)).first()
        return _issue(row) if row is not None else None

    def issues(self) -> list[Issue]:
        """Every stored issue, oldest first."""
        with self._tx() as conn:
            return [_issue(r) for r in conn.execute(select(issues).order_by(issues.c.cutoff))]

    # -- deliveries: claims that make sending exactly-once --------------------

    def deliveries(self, issue: str) -> dict[int, Delivery]:
        """Every delivery record of an issue, by subscriber id."""
        with self._tx() as conn:
            rows = conn.execute(select(deliveries).where(deliveries.c.issue == issue)).all()
        return {r.subscriber_id: _delivery(r) for r in rows}

    def claim_delivery(self, issue: str, subscriber_id: int, owner: str, now: datetime) -> bool:
        """Claim a fresh (issue, subscriber) for `owner`; False if anyone has a record.

        The primary key makes this the one race-free decision between two
        senders: exactly one INSERT succeeds.
        """
        with self._tx() as conn:
            added = conn.execute(
                _insert(conn, deliveries)
                .values(
                    issue=issue, subscriber_id=subscriber_id,
                    status=str(DeliveryStatus.CLAIMED), attempts=0, owner=owner,
                    claimed_at=now, updated=now,
                )
                .on_conflict_do_nothing()
                .returning(deliveries.c.issue)
            ).first()  # fmt: skip
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT's rowcount.
        return added is not None

    def take_over_delivery(
        self,
        issue: str,
        subscriber_id: int,
        expected: Delivery,
        owner: str,
        now: datetime,
    ) -> bool:
        """Claim a record left claimed (by a dead sender) or deferred; compare-and-set.

        Succeeds only if the record is still exactly as `expected` was read,
        so two senders taking over the same record cannot both win.
        """
        with self._tx() as conn:
            owner_matches = (
                deliveries.c.owner.is_(None)
                if expected.owner is None
                else deliveries.c.owner == expected.owner
            )
            result = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.issue == issue,
                    deliveries.c.subscriber_id == subscriber_id,
                    deliveries.c.status == str(expected.status),
                    deliveries.c.attempts == expected.attempts,
                    owner_matches,
                )
                .values(
                    status=str(DeliveryStatus.CLAIMED), owner=owner, claimed_at=now, updated=now
                )
            )
        return bool(result.rowcount == 1)

    def record_delivery(
        self,
        issue: str,
        subscriber_id: int,
        owner: str,
        status: DeliveryStatus,
        now: datetime,
        *,
        error: str | None = None,
        attempted: bool = False,
    ) -> bool:
        """Move a delivery `owner` holds to `status`; False if it no longer holds it."""
        values: dict[str, Any] = {"status": str(status), "error": error, "updated": now}
        if attempted:
            values["attempts"] = deliveries.c.attempts + 1
        if status is DeliveryStatus.SENT:
            values["sent_at"] = now
        if status in (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.DEFERRED):
            values["owner"] = None
        with self._tx() as conn:
            result = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.issue == issue,
                    deliveries.c.subscriber_id == subscriber_id,
                    deliveries.c.owner == owner,
                )
                .values(**values)
            )
        return bool(result.rowcount == 1)

    def resolve_uncertain(
        self, issue: str, subscriber_id: int, expected: Delivery, now: datetime
    ) -> bool:
        """Record that a dead sender's in-flight handover is uncertain (compare-and-set)."""
        with self._tx() as conn:
            result = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.issue == issue,
                    deliveries.c.subscriber_id == subscriber_id,
                    deliveries.c.status == str(expected.status),
                    deliveries.c.owner == expected.owner,
                )
                .values(
                    status=str(DeliveryStatus.UNCERTAIN), owner=None, updated=now,
                    error="the sender stopped while handing the message to the server;"
                    " assumed delivered, not resent",
                )
            )  # fmt: skip
        return bool(result.rowcount == 1)

    def reset_uncertain(self, issue: str, now: datetime) -> int:
        """Make an issue's uncertain deliveries deferred, so the next send resends them."""
        with self._tx() as conn:
            result = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.issue == issue,
                    deliveries.c.status == str(DeliveryStatus.UNCERTAIN),
                )
                .values(status=str(DeliveryStatus.DEFERRED), owner=None, updated=now)
            )
        return int(result.rowcount)


_REMOVED_FROM_CONFIG = "removed from config.toml"
_ISSUE_FIELDS = (
    "key", "cutoff", "subject", "html", "text", "archive_html", "entry_count", "shown_count",
    "created",
)  # fmt: skip


def _subscriber(r: Any) -> Subscriber:
    return Subscriber(
        id=r.id, email=r.email, name=r.name, status=SubscriberStatus(r.status), token=r.token,
        in_config=bool(r.in_config), note=r.note,
    )  # fmt: skip


def _issue(r: Any) -> Issue:
    return Issue(**{f: getattr(r, f) for f in _ISSUE_FIELDS})


def _delivery(r: Any) -> Delivery:
    return Delivery(
        issue=r.issue, subscriber_id=r.subscriber_id, status=DeliveryStatus(r.status),
        attempts=r.attempts, error=r.error, owner=r.owner, claimed_at=r.claimed_at,
        sent_at=r.sent_at,
    )  # fmt: skip
