"""Vocal separation (being built: issue 6)."""
