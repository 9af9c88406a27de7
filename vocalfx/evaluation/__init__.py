"""Evaluation harness (being built: issue 5)."""
