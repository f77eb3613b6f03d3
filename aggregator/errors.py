"""One exception hierarchy for every error a user can hit.

Messages are written for a person: they name the file (and line) or the URL
and say what is wrong. Anything else that escapes is a bug and keeps its
traceback.
"""

from __future__ import annotations


class AggregatorError(Exception):
    """Base of every error aggregator raises on purpose."""


class ConfigError(AggregatorError):
    """config.toml is missing, malformed, or holds a wrong key or value."""


class SourceError(AggregatorError):
    """A post or a feed could not be read.

    `location` is a path (with ":line" when known) or a URL.
    """

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason


class NormalizeError(AggregatorError):
    """An item was read but cannot become an Entry."""


class StoreError(AggregatorError):
    """The database cannot be opened or written."""


class DeliveryError(AggregatorError):
    """An output cannot be written or a message cannot be sent."""
