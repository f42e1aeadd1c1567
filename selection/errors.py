"""Exceptions raised by ``selection``; every message names the candidate, image, file or field."""

from __future__ import annotations

__all__ = ["SelectionError", "PredictionStoreError"]


class SelectionError(ValueError):
    """Bad input to the vote, the scores or the sweep set-up (which candidate, which image, which field)."""


class PredictionStoreError(SelectionError):
    """A predictions file is missing, corrupt, or does not hold what the caller expects."""
