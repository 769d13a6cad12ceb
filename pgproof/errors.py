"""The one exception for bad input: what the user wrote is wrong, said in one sentence.

Every layer raises ``UserError`` (or a subclass such as ``ConfigError``) for a
mistake the user can fix; ``pgproof.cli.main`` and the pytest plugin are the only
places that print it, and they exit 2 before anything is written.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: one sentence naming the problem (and, where known, the fix)."""
