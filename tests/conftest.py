"""Shared test set-up: offline Hugging Face, a non-interactive matplotlib, thread checks."""

from __future__ import annotations

import os
import pytest

from tests.helpers.threads import lightning_green_threads

# No network in tests: hub models and data sets are never fetched.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
# Report-building bugs raise in tests instead of becoming a warning (see hooks._finish).
os.environ.setdefault("LIGHTNING_GREEN_STRICT", "1")


@pytest.fixture
def no_thread_leak():
    """Fails the test if a lightning-green thread outlives it."""
    yield
    leaked = lightning_green_threads()
    assert not leaked, f"lightning-green threads still alive: {leaked}"
