"""Feature extraction: decoding in DataLoader workers gives the features of the serial loop."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from adtr import backbones, data, features
from adtr.errors import DataError


@pytest.fixture(scope="module")
def extractor() -> backbones.FeatureExtractor:
    return backbones.FeatureExtractor("efficientnet_lite0", (1, 2, 3), 64, weights="random")


def _serial(extractor, samples, size: int, batch: int) -> torch.Tensor:
    """The plain loop: decode a batch, run the backbone, next batch."""
    out = []
    for start in range(0, len(samples), batch):
        images = [data.load_image(s.image, size)[0] for s in samples[start:start + batch]]
        with torch.no_grad():
            out.append(extractor(torch.from_numpy(np.stack(images))))
    return torch.cat(out)


def test_workers_give_the_features_of_the_serial_loop_in_order(tiny_root, extractor) -> None:
    samples = data.list_samples(tiny_root, "grass", "test")  # several defect kinds
    expected = _serial(extractor, samples, 64, batch=3)
    for workers in (0, 2):
        got = features.extract(extractor, samples, 64, torch.device("cpu"), batch_size=3,
                               progress=False, workers=workers)
        assert torch.equal(got, expected)  # same images, same batches: the same numbers


def test_an_unreadable_image_in_a_worker_is_a_data_error_naming_it(tiny_root, extractor,
                                                                   tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(tiny_root / "brick", root / "brick")
    samples = data.list_samples(root, "brick", "train")
    samples[-1].image.write_bytes(samples[-1].image.read_bytes()[:60])  # a truncated PNG
    with pytest.raises(DataError) as error:
        features.extract(extractor, samples, 64, torch.device("cpu"), batch_size=2,
                         progress=False, workers=2)
    assert str(samples[-1].image) in str(error.value)
    assert "Traceback" not in str(error.value)  # the loader's own message, not a worker's


def test_workers_decode_beside_a_gpu_backbone_only(monkeypatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert features.loader_workers(100, 16, cuda) == 4
    assert features.loader_workers(100, 16, cpu) == 0  # the backbone has every core
    assert features.loader_workers(16, 16, cuda) == 0  # one batch: no worker pays off
    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)
    assert features.loader_workers(1000, 16, cuda) == 8
