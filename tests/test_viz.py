"""The cost figure's axes: a log scale only where a panel's times span a factor of 10."""

import pandas as pd

from adtr import viz


def test_cost_bars_log_scale_only_for_wide_time_ranges():
    cost = pd.DataFrame({
        "category": ["a", "a", "b", "b"],
        "variant": ["adtr", "padim", "adtr", "padim"],
        "train_s": [80.0, 1.2, 75.0, 1.5],  # spans ~70x: log
        "test_s": [0.7, 1.5, 0.8, 1.4],  # spans ~2x: linear, bars from 0
        "train_peak_mb": [240.0, 700.0, 250.0, 690.0],
    })
    fig = viz.cost_bars(cost, {"adtr": "ADTR", "padim": "PaDiM"})
    train, test, memory = fig.axes
    assert [ax.get_xscale() for ax in (train, test, memory)] == ["log", "linear", "linear"]
    assert test.get_xlim()[0] == 0
    labels = [text.get_text() for legend in fig.legends for text in legend.get_texts()]
    assert labels == ["ADTR", "PaDiM"]
