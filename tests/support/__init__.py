"""Helpers of the integration tests (not fixtures: those are in tests/conftest.py)."""
