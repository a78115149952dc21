"""A notebook's stamp: what decides what it writes (its parameters, its own source, the code
of the ``adtr`` modules it imports, the data it reads), and whether the code has changed since
a stamp was written. Kept apart from ``reproduce`` (which runs notebooks) so that the book
can ask without importing what trains models."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from adtr.records import code_digest, files_sha256, imported_modules, project_root


def notebooks_dir() -> Path:
    """``$ADTR_NOTEBOOKS_DIR`` if set (e.g. tests running a batch of tiny notebooks in a
    subprocess), else the project's ``notebooks/``."""
    chosen = os.environ.get("ADTR_NOTEBOOKS_DIR", "").strip()
    return Path(chosen) if chosen else project_root() / "notebooks"


def notebook_modules(path: Path) -> list[str]:
    """The ``adtr`` modules a notebook's code imports."""
    cells = json.loads(path.read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return sorted(imported_modules("\n".join(lines)))


def stamp(name: str, parameters: dict[str, Any], data_digest: str,
          folder: Path | None = None) -> dict[str, Any]:
    """What decides a notebook's output: its parameters, its own source, the code of the
    ``adtr`` modules it imports (and theirs), and the data it reads."""
    path = (folder or notebooks_dir()) / f"{name}.ipynb"
    return {"notebook": name, "parameters": parameters,
            "notebook_sha256": files_sha256([path])[:16],
            "package_sha256": code_digest(notebook_modules(path)),
            "data_sha256": data_digest}


def code_changed(written: dict[str, Any]) -> bool:
    """Whether a notebook's source or the code of the ``adtr`` modules it imports has
    changed since the stamp ``written`` was written (its parameters and data left aside):
    then what it wrote is not what the code computes now."""
    if not (notebooks_dir() / f"{written.get('notebook')}.ipynb").is_file():
        return True
    now = stamp(written["notebook"], {}, "")
    return any(now[key] != written.get(key) for key in ("notebook_sha256", "package_sha256"))
