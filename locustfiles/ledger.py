"""Write-heavy load with a ledger: ``locust -f locustfiles/ledger.py`` (see pgproof.load.users)."""

from pgproof.load.users import LedgerWriter

__all__ = ["LedgerWriter"]
