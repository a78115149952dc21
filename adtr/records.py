"""Atomic result files and run records.

Every file is written atomically (a temporary file in the same folder, then a rename),
so a run killed at any moment leaves either the old file or the new one, never half of
one; the next write of that file deletes the killed writer's temporary file. Every result
carries a run record: what was run, on which data, with which backbone and weights, for
how long, on which machine and software.
"""

from __future__ import annotations

import ast
import contextlib
import glob
import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _remove_abandoned(path: Path) -> None:
    """Delete the temporary files of ``path`` whose writer was killed: the pid in their
    name no longer runs (a writer that is still running keeps its file)."""
    start = len(path.name) + 2  # after ".<name>."
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[start:].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file is ``.<name>.<pid>.<random>.tmp``. A writer killed before the rename
    leaves it behind; the next write of ``path`` deletes it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=path.parent)
    os.close(handle)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def project_root() -> Path:
    """The folder holding ``pyproject.toml`` and ``adtr/`` above the working directory
    (else the folder this package sits in)."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "adtr").is_dir():
            return folder
    return Path(__file__).resolve().parent.parent


#: Folders of the project that a recorded path may point into (data, runs, results).
PROJECT_FOLDERS = ("data", "runs", "results")


def portable_path(path: str | Path, root: Path | None = None) -> str:
    """A recorded path without the machine's part: relative to the project root when it lies
    inside it (or, for a path written on another machine, from the project folder it names:
    ``/elsewhere/data/synthetic`` -> ``data/synthetic``), else its name only."""
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    root = (root or project_root()).resolve()
    if path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    parts = path.parts
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] in PROJECT_FOLDERS:
            return Path(*parts[i:]).as_posix()
    return path.name


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_sha256(paths: list[Path]) -> str:
    """One SHA-256 (hex) over the bytes of several files, in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def file_stamps(paths: list[Path]) -> list[list[Any]]:
    """[resolved path, size, modification time in ns] of each file: what tells a changed
    file from the one a cache or a run was made from, without reading it."""
    stamps = []
    for path in paths:
        stat = Path(path).stat()
        stamps.append([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
    return stamps


def stamps_digest(paths: list[Path]) -> str:
    """SHA-256 (16 hex digits) of ``file_stamps(paths)``."""
    return hashlib.sha256(json.dumps(file_stamps(paths)).encode()).hexdigest()[:16]


def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def module_files(name: str) -> list[Path]:
    """The source files of ``adtr.<name>``: one file, or every file of a subpackage."""
    folder = _package_dir() / name
    if folder.is_dir():
        return sorted(folder.glob("*.py"))
    path = folder.with_suffix(".py")
    return [path] if path.is_file() else []


def imported_modules(source: str) -> set[str]:
    """The ``adtr`` modules that Python ``source`` imports (at any depth of the code)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[1] for alias in node.names
                         if alias.name.startswith("adtr."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "adtr":
                names.update(alias.name for alias in node.names)
            elif node.module.startswith("adtr."):
                names.add(node.module.split(".")[1])
    return {name for name in names if module_files(name)}


def module_closure(names: set[str] | list[str], leave_out: set[str] = frozenset()
                   ) -> list[str]:
    """``names`` and every ``adtr`` module they import, directly or not, sorted; a module
    in ``leave_out`` is not followed (nor what only it imports)."""
    seen: set[str] = set(leave_out)
    todo = [name for name in names if module_files(name) and name not in leave_out]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for path in module_files(name):
            todo += sorted(imported_modules(path.read_text()) - seen)
    return sorted(seen - set(leave_out))


def code_digest(names: set[str] | list[str], leave_out: set[str] = frozenset()) -> str:
    """SHA-256 (16 hex digits) of the source of ``names`` and of every ``adtr`` module they
    import: what decides what code that uses them computes. Derived from the imports, so a
    new module is covered without a list to keep; ``leave_out``: modules that compute
    nothing in it (see ``module_closure``)."""
    files = [path for name in module_closure(names, leave_out)
             for path in module_files(name)]
    return files_sha256(files)[:16]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, data: dict) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(data), indent=2) + "\n")
    return Path(path)


def write_csv(path: str | Path, frame: Any) -> Path:
    """Write a pandas DataFrame as CSV, atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def git_commit() -> str:
    """The commit of the source tree (with ``+dirty`` for uncommitted changes), or 'unknown'."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                                capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "adtr"], cwd=root,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def cpu_name() -> str:
    """The CPU's model name ("AMD EPYC 7B13", ...), else the machine type ("x86_64")."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str) -> dict[str, Any]:
    """Software and hardware that produced a result."""
    import timm
    import torch

    info = {
        "device": device,
        "device_name": cpu_name(),
        # the widest vector instructions torch uses here (AVX2, AVX512, ...)
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "platform": platform.platform(),
        "git_commit": git_commit(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return info


def run_record(**parts: Any) -> dict[str, Any]:
    """A run record: the given parts plus the time it was written."""
    return {"written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **parts}
