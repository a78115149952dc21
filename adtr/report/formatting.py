"""How numbers and tables are written on a page: percentages, mean ± std over seeds,
differences in points, durations, numbers in words, and MyST tables and figure grids."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd


def percent(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage without the sign: 0.9724 -> '97.2'; missing -> '—'."""
    if value is None or pd.isna(value):
        return "—"
    return f"{100 * value:.{digits}f}"


def mean_std(mean: float, std: float | None, seeds: int, digits: int = 1) -> str:
    """'97.2 ± 0.3' (in %) over several seeds; '97.2' for one seed, where std means nothing."""
    text = percent(mean, digits)
    if seeds > 1 and std is not None and not pd.isna(std):
        return f"{text} ± {100 * std:.{digits}f}"
    return text


def interval(difference: float, low: float, high: float, digits: int = 2) -> str:
    """A paired difference with its interval, in points: '+1.93 [+1.34, +2.41]'; never
    '-0.00'."""
    def point(x: float) -> str:
        return f"{round(x, digits) or 0.0:+.{digits}f}"

    return f"{point(difference)} [{point(low)}, {point(high)}]"


def fixed(value: float, digits: int = 3) -> str:
    """A number with ``digits`` decimals, '0.000' for a value that rounds to zero (never
    '-0.000')."""
    return f"{round(float(value), digits) or 0.0:.{digits}f}"


def signed(delta: float, spread: float | None = None) -> str:
    """A difference in points: '+1.2', '-0.4 ± 0.3'; never '-0.0'."""
    text = f"{round(delta, 1) or 0.0:+.1f}"
    return text if spread is None else f"{text} ± {spread:.1f}"


def over_seeds(seeds: list[int] | tuple[int, ...], what: str = "mean ± std") -> str:
    """What a value over ``seeds`` is: 'mean ± std over 3 seeds', or 'seed 0' for one seed
    (no ± then)."""
    seeds = list(seeds)
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"{what} over {len(seeds)} seeds"


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def listing(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else "".join(words)


def number_word(n: int) -> str:
    """'eight' for 8; digits from 13 on."""
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
             "ten", "eleven", "twelve")
    return words[n] if 0 <= n < len(words) else str(n)


def ordinal(n: int) -> str:
    words = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
    return words[n - 1] if 0 < n <= len(words) else f"{n}th"


def duration(seconds: float | None) -> str:
    """'42 s', '3 min 05 s', '2 h 07 min'."""
    if seconds is None or pd.isna(seconds):
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, caption: str | None = None) -> str:
    """A MyST table of ``frame`` (index dropped); with a caption it becomes a numbered table."""
    header = "| " + " | ".join(_cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join(" --- " for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    table = "\n".join([header, rule, *rows])
    if caption is None:
        return table
    return f"~~~{{table}} {caption}\n:align: left\n\n{table}\n~~~"


def figure_grid(figures: list[tuple[Path, str]], columns: int = 2) -> str:
    """MyST for figures side by side (sphinx-design grid); the build copies the files."""
    items = []
    for path, caption in figures:
        if not path.is_file():
            items.append(f":::{{grid-item}}\nFigure `{path.name}` is missing.\n:::")
            continue
        relative = os.path.relpath(path, Path.cwd())
        items.append(f":::{{grid-item}}\n```{{figure}} {relative}\n:width: 100%\n\n{caption}\n"
                     f"```\n:::")
    return f"::::{{grid}} 1 1 {columns} {columns}\n:gutter: 2\n\n" + "\n".join(items) + "\n::::"
