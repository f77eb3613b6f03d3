"""aggregator: one digest of your own posts and the feeds you follow.

Delivered as Atom feeds, static web pages and a weekly HTML email.
"""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/aggregator-project/aggregator"
