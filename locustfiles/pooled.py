"""Ledger writes and reads through the pooler (PgBouncer / RDS Proxy) endpoint.

``locust -f locustfiles/pooled.py``; ``PGPROOF_LOAD_ENDPOINT`` still overrides
the endpoint. Prepared statements are off: a transaction-mode pooler may run
the next statement on another server connection. The module (not its classes)
is imported so Locust does not also pick up the direct-endpoint users.
"""

from pgproof.load import users


class PooledLedgerWriter(users.LedgerWriter):
    endpoint = "pooler"
    prepare_threshold = None
    weight = 3


class PooledReadMix(users.ReadMix):
    endpoint = "pooler"
    prepare_threshold = None
    weight = 1
