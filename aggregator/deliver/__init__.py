"""Delivery of files: every output written atomically, stale outputs removed."""
