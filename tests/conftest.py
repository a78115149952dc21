"""Shared fixtures: a tiny generated data set and an isolated feature cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from adtr import features, synth


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two generated categories at 64 px: 4 train, 2 good + 1 per defect kind in test."""
    root = tmp_path_factory.mktemp("synthetic")
    synth.generate(root, seed=0, categories=["brick", "grass"], n_train=4, n_test_good=2,
                   n_test_defective=5, image_size=64, progress=False)
    return root


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADTR_CACHE_DIR", str(tmp_path / "cache"))
    features.clear_memory_cache()
