"""Shared fixtures (CPU only)."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def embedder():
    """The packaged all-MiniLM-L6-v2 (offline)."""
    from reward_fns.similarity import shared_embedder

    return shared_embedder()
