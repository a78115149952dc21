"""The one plotting style of every figure in the notebooks and the book.

A figure is shown scaled to the book's content column (about 690 px at a 1280 px window), so
its text is set for that: figures at most ``WIDTH`` inches wide and labels in points that come
out at body-text size there; legends go outside the data (each figure function places its
own). Figure functions are wrapped in ``styled``, so that a figure looks the same whoever
calls it and matplotlib's global settings are left alone."""

from __future__ import annotations

import functools
import re
import textwrap
from collections.abc import Callable
from typing import Any, TypeVar

#: The widest figure (inches): at the book's 120 dpi it is shown about at its own size.
WIDTH = 7.5

RC: dict[str, Any] = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10.5,
    "ytick.labelsize": 10.5,
    "legend.fontsize": 10.5,
    "legend.title_fontsize": 10.5,
    "legend.frameon": False,
    "figure.titlesize": 13,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.6,
}

F = TypeVar("F", bound=Callable[..., Any])


def styled(function: F) -> F:
    """Run a figure function under the book's style (``RC``)."""
    import matplotlib

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with matplotlib.rc_context(RC):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def wrap(label: str, width: int = 14) -> str:
    """A tick label broken into lines of about ``width`` characters: words whole, and a
    parenthesis such as '(no training)' on one line."""
    kept = re.sub(r"\([^)]*\)", lambda m: m[0].replace(" ", "\u00a0"), label)
    lines = textwrap.wrap(kept, width, break_long_words=False)
    return "\n".join(lines).replace("\u00a0", " ") or label
