"""Locust files for game-day load, shipped in the wheel as ``pgproof.locustfiles``."""
