"""Subscribers: config.toml's list brought into the database, added, removed,
unsubscribed. Each keeps a status and a token; no row is ever deleted."""

from __future__ import annotations

import secrets
from datetime import datetime

from aggregator.config import Config
from aggregator.model import UNSUBSCRIBE_PLACEHOLDER, Subscriber, SubscriberStatus
from aggregator.newsletter import message
from aggregator.store import Store


def new_token() -> str:
    """An unsubscribe token: 192 random bits, URL-safe, 32 characters."""
    token = secrets.token_urlsafe(24)
    assert len(token) == len(UNSUBSCRIBE_PLACEHOLDER)  # keeps size measuring exact
    return token


def sync_subscribers(config: Config, store: Store, now: datetime) -> None:
    """Bring config.toml's [[subscribers]] into the database (see Store.sync_subscribers)."""
    listed = [(s.email, s.name) for s in config.subscribers]
    store.sync_subscribers(
        [(message.normalize_address(email), name) for email, name in listed], new_token, now
    )


def all_subscribers(config: Config, store: Store, now: datetime) -> list[Subscriber]:
    """Every subscriber, config.toml's included, with their status."""
    sync_subscribers(config, store, now)
    return store.subscribers()


def add_subscriber(
    config: Config, store: Store, email: str, name: str, now: datetime
) -> Subscriber:
    """Add (or reactivate) a subscriber; DeliveryError for an invalid address."""
    sync_subscribers(config, store, now)
    return store.add_subscriber(message.normalize_address(email), name, new_token(), now)


def remove_subscriber(config: Config, store: Store, email: str, now: datetime) -> Subscriber | None:
    """Mark a subscriber unsubscribed by the admin; None if unknown. Rows stay for history."""
    sync_subscribers(config, store, now)
    sub = store.subscriber_by_email(email.strip())
    if sub is None:
        return None
    return store.set_subscriber_status(
        sub.id, SubscriberStatus.UNSUBSCRIBED, "removed by admin", now
    )


def unsubscribe(config: Config, store: Store, token: str, now: datetime) -> Subscriber | None:
    """Unsubscribe the holder of `token` (idempotent); None for an unknown token.

    What the daemon's one-click POST (RFC 8058) and the admin command call.
    """
    sub = store.subscriber_by_token(token.strip())
    if sub is None:
        return None
    return store.set_subscriber_status(
        sub.id, SubscriberStatus.UNSUBSCRIBED, "unsubscribe link", now
    )


def unsubscribe_token_or_email(
    config: Config, store: Store, token_or_email: str, now: datetime
) -> Subscriber | None:
    """The admin's unsubscribe: by token, or by address; None if neither is known."""
    sync_subscribers(config, store, now)
    sub = unsubscribe(config, store, token_or_email, now)
    if sub is None and "@" in token_or_email:
        found = store.subscriber_by_email(token_or_email.strip())
        sub = unsubscribe(config, store, found.token, now) if found else None
    return sub
