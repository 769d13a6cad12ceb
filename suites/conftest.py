"""The suites' fixtures (one per layer: ``pg_facts``, ``tls_facts``, ``aws_inventory``, ...)
come from pgproof's pytest plugin, ``pgproof/pytest_fixtures.py``, so tests of your own in
any repository can use them too (``examples/own-tests/``)."""
