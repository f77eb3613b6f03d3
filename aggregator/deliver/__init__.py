"""Delivery: files on disk (atomic), and later SMTP."""
