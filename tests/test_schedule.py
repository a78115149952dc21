"""The learning-rate schedule has the paper's shape for any number of epochs: one cut,
x0.1, at 80 % of them (500 epochs: after epoch 400)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from adtr import cli, pipeline, profiles, train


def _lrs(epochs: int, cut: int | None) -> list[float]:
    """The lr of each epoch, stepped as ``train.train`` steps it."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = train.make_scheduler(optimizer, cut)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("epochs", [1, 2, 5, 10, 20, 40, 123, 160, 500])
def test_any_number_of_epochs_cuts_once_at_80_percent(epochs: int) -> None:
    cut = train.lr_cut_epoch(epochs)
    assert cut == max(1, round(0.8 * epochs))
    lrs = _lrs(epochs, cut)
    assert lrs[:cut] == [1.0] * cut
    assert lrs[cut:] == pytest.approx([0.1] * (epochs - cut))  # once: never 0.01


def test_the_paper_cuts_after_epoch_400_and_fine_tuning_never() -> None:
    assert train.schedule_of(profiles.resolve("paper")) == (500, 1e-4, 400)
    assert train.schedule_of(profiles.resolve("cpu", epochs=160))[2] == 128
    assert _lrs(7, None) == [1.0] * 7


def test_fit_with_epochs_cuts_exactly_once_at_0_8_n(tiny_root: Path, tmp_path: Path) -> None:
    # the smoke profile's own schedule is 2 epochs: --epochs 10 must not cut every 2
    code = cli.main(["fit", "--data-root", str(tiny_root), "--category", "brick", "--profile",
                     "smoke", "--epochs", "10", "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 0
    lrs = json.loads((tmp_path / "run" / "metrics.json").read_text())["record"]["lr_history"]
    lr = profiles.resolve("smoke").lr
    assert lrs == pytest.approx([lr] * 8 + [lr * 0.1] * 2)


def test_a_checkpoint_of_another_schedule_is_not_resumed(tiny_root: Path, tmp_path: Path,
                                                          capsys) -> None:
    config = profiles.resolve("smoke", data_root=str(tiny_root), epochs=4, checkpoint_every=2)
    run = pipeline.category_data(config, "brick")
    pipeline.fit(profiles.with_overrides(config, epochs=2), run, tmp_path / "run",
                 progress=False)
    path = tmp_path / "run" / "checkpoint.pt"
    state = torch.load(path, weights_only=False)
    state["config"]["epochs"] = 4  # as if a 4-epoch run had been stopped after epoch 2 ...
    state.pop("schedule")  # ... under the old schedule, which the checkpoint did not record
    torch.save(state, path)
    (tmp_path / "run" / "metrics.json").unlink()
    result = pipeline.fit(config, run, tmp_path / "run", progress=False)
    assert "recorded their 'schedule'; training from scratch" in capsys.readouterr().err
    assert result.record.epochs_trained == 4 and len(result.record.lr_history) == 4
