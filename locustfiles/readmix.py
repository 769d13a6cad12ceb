"""Read-only load: ``locust -f locustfiles/readmix.py`` (see pgproof.load.users)."""

from pgproof.load.users import ReadMix

__all__ = ["ReadMix"]
