"""Load the pgproof pytest plugin (options, targets, control markers, reports)."""

pytest_plugins = ["pgproof.pytest_plugin"]
