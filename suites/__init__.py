"""The compliance suites (read-only checks), shipped in the wheel as ``pgproof.suites``."""
