"""benchmarks/gpu_check.sh: its syntax and its help (the script itself needs a GPU)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.sh"
STEPS = ("install", "env", "tests", "smoke", "bench", "table4a")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _bash(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *args], capture_output=True, text=True, timeout=60)


def test_the_script_parses() -> None:
    done = _bash("-n", str(SCRIPT))
    assert done.returncode == 0, done.stderr


def test_help_names_every_step_and_option() -> None:
    done = _bash(str(SCRIPT), "--help")
    assert done.returncode == 0, done.stderr
    for word in (*(f"  {step} " for step in STEPS), "--tiny", "--no-tests", "--budget-s",
                 "runs.csv", "adtr reproduce --profile smoke", "--precisions fp32 bf16 fp16"):
        assert word in done.stdout, word


@pytest.mark.parametrize("args", [["--bogus"], ["--steps", "bench,nope"], ["--jobs", "x"]])
def test_bad_options_stop_before_any_step(args: list[str], tmp_path: Path) -> None:
    done = _bash(str(SCRIPT), *args, "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert not (tmp_path / "out").exists()
