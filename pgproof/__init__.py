"""pgproof: prove a managed PostgreSQL deployment meets its spec and survives failover."""

__version__ = "0.1.0"
