"""Runs: the executor, live vendor connections, and run history as users see it."""
