"""The benchmark page: ``results/benchmarks/*.json`` and the batch records
``<profile>/executed/batch.json`` as tables, and the performance targets against them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from adtr.profiles import PROFILES
from adtr.report.formatting import duration
from adtr.report.loading import Experiment, results_root
from adtr.schema import model_seconds


def benchmark_files(results_dir: str | Path | None = None) -> list[Path]:
    return sorted((results_root(results_dir) / "benchmarks").glob("*.json"))


def benchmark_tables(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A benchmark file as (its scalar fields, its table): the table is the first list of
    records found (or the file itself when it is a list); nested fields are flattened."""
    data = json.loads(path.read_text())
    if isinstance(data, list):
        return pd.DataFrame(), pd.json_normalize(data).map(_tidy)
    table_key = next((k for k, v in data.items() if isinstance(v, list) and v
                      and all(isinstance(x, dict) for x in v)), None)
    table = pd.json_normalize(data[table_key]).map(_tidy) if table_key else pd.DataFrame()
    rest = {k: v for k, v in data.items() if k != table_key}
    flat = pd.json_normalize(rest).T.reset_index() if rest else pd.DataFrame()
    if not flat.empty:
        flat.columns = ["Field", "Value"]
        flat["Field"] = flat["Field"].str.replace(r"^(record\.)?(environment\.)?", "",
                                                  regex=True)
        flat = flat[~flat["Field"].isin(_UNSHOWN_FIELDS)]
        flat["Field"] = flat["Field"].map(lambda f: _FIELD_LABELS.get(f, f.replace("_", " ")))
        flat["Value"] = flat["Value"].map(_tidy)
    return flat.reset_index(drop=True), table


#: A benchmark record's fields as the page names them (others: the key with spaces).
_FIELD_LABELS = {
    "written_at": "Written", "quick": "Quick run", "images": "Images per batch",
    "repeats": "Repeats", "precisions": "Precisions", "cpu_has_bf16_units":
    "CPU has bf16 matrix units", "device": "Device", "device_name": "Device name",
    "cpu_capability": "Vector instructions", "cpu_count": "CPUs", "torch_threads":
    "torch threads", "python": "Python", "torch": "torch", "timm": "timm",
    "platform": "Platform", "git_commit": "Commit", "wall_time_s": "Wall time (s)",
    "peak_rss_gib_parent": "Peak memory (GiB)"}
_UNSHOWN_FIELDS = {"experiment"}


def batch_files(results_dir: str | Path | None = None) -> list[Path]:
    """``<profile>/executed/batch.json`` of each profile: a whole ``adtr reproduce`` batch."""
    return sorted(results_root(results_dir).glob("*/executed/batch.json"))


def _arrangement(record: dict[str, Any]) -> str:
    """How a batch record's notebooks ran: one at a time or side by side."""
    if record["jobs"] == 1:
        return "one notebook at a time"
    return f"{record['jobs']} notebooks side by side"


def batch_time_text(profile: str, experiments: dict[str, Experiment | None],
                    results_dir: str | Path | None = None) -> str:
    """How long the profile's batch took: the wall time of its ``batch.json`` where a whole
    batch was recorded from scratch; else (a batch resumed after a stop, or notebooks run
    one by one) the training time of its distinct runs, each counted once."""
    path = results_root(results_dir) / profile / "executed" / "batch.json"
    if path.is_file():
        record = json.loads(path.read_text())
        return (f"The `{profile}` batch behind this build took "
                f"{duration(record['wall_time_s'])} of wall time ({_arrangement(record)}).")
    models = model_seconds([r for e in experiments.values() if e is not None
                            for r in e.record.runs])
    return (f"The `{profile}` batch behind this build was not run as one batch from "
            f"scratch (a batch resumed after a stop records no wall time), so it has no wall "
            f"time of its own; its {len(models)} distinct runs trained for "
            f"{duration(sum(models.values()))} in all, one core each.")


def batch_summary(path: Path) -> tuple[str, pd.DataFrame]:
    """A batch record as one sentence and a table of its notebooks' times."""
    record = json.loads(path.read_text())
    env = record.get("environment", {})
    threads = record.get("threads_per_notebook")
    side = _arrangement(record)
    if record["jobs"] > 1 and threads:
        side += f", {threads} thread{'s' if threads > 1 else ''} each"
    text = (f"The whole `{record['profile']}` batch took **{duration(record['wall_time_s'])}** "
            f"of wall time ({side}), from generating the data to the last figure, on "
            f"{env.get('cpu_count', '?')} CPU cores ({env.get('device', '?')}), "
            f"commit `{env.get('git_commit', '?')}`, {record.get('written_at', '?')[:10]}.")
    table = pd.DataFrame([{"Notebook": f"`{n['notebook']}`", "Time": duration(n["seconds"])}
                          for n in record["notebooks"]])
    return text, table


def _row(rows: list[dict[str, Any]], benchmark: str, **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if row.get("benchmark") == benchmark and all(row.get(k) == v for k, v in match.items()):
            return row
    return None


#: MVTec-AD's training images, all 15 categories (Bergmann et al., CVPR 2019, Table 1).
MVTEC_TRAIN_IMAGES = 3629
#: The sustained arithmetic rate the paper-profile estimate assumes for one GPU (FLOP/s):
#: about a tenth of an H100's dense bf16 peak, for matrices as small as this model's.
ASSUMED_GPU_FLOPS = 100e12
#: The time one small training step is assumed to spend in kernel launches and the like.
ASSUMED_STEP_OVERHEAD_S = 0.003


def paper_estimate(path: Path | None) -> str:
    """The paper profile's training cost, estimated from a benchmark file's FLOP count of
    one paper-size training step (the GPU check has not measured it): one model set (every
    MVTec-AD category once, at the profile's epochs and batch) at ``ASSUMED_GPU_FLOPS``,
    with the launch overhead of its steps, and the benchmark process's peak host memory as
    the one memory figure there is. Empty without a file that has the row."""
    if path is None or not path.is_file():
        return ""
    data = json.loads(path.read_text())
    step = _row(data.get("rows", []), "training", profile="paper", mode="feature cache")
    if not step or not step.get("step_gflop"):
        return ""
    epochs, batch = PROFILES["paper"]["epochs"], PROFILES["paper"]["batch_size"]
    total = step["step_gflop"] * 1e9 / batch * MVTEC_TRAIN_IMAGES * epochs
    arithmetic = total / ASSUMED_GPU_FLOPS
    # one model per category; the categories' sizes are not known here: even shares
    steps = 15 * -(-(MVTEC_TRAIN_IMAGES // 15) // batch) * epochs
    overhead = steps * ASSUMED_STEP_OVERHEAD_S
    compared = "more than" if overhead > arithmetic else "less than"
    text = (f"**An estimate, not a measurement** (no GPU has run the paper profile for this "
            f"book): one training step of the paper's model at batch {batch} is "
            f"{step['step_gflop']:.0f} GFLOP (torch's FLOP counter, in the benchmark), so one "
            f"model for each of MVTec-AD's 15 categories ({MVTEC_TRAIN_IMAGES:,} training "
            f"images, {epochs} epochs) is {total / 1e15:.1f} PFLOP: about "
            f"{duration(arithmetic)} of arithmetic at a sustained "
            f"{ASSUMED_GPU_FLOPS / 1e12:.0f} TFLOP/s (an assumed rate, about a tenth of an "
            f"H100's bf16 peak), before the backbone's passes and the evaluation. Its "
            f"{steps:,} or so optimiser steps pay for launching their kernels too: at an "
            f"assumed {ASSUMED_STEP_OVERHEAD_S * 1000:.0f} ms a step, "
            f"{duration(overhead)}, {compared} the arithmetic. Each trained variant of "
            f"Table 4 and the unified model is one more such set; the convergence study's long "
            f"runs train twice the epochs on a few categories.")
    memory = data.get("record", {}).get("peak_rss_gib_parent")
    if memory:
        text += (f" Memory: the whole benchmark process, which ran this training step among "
                 f"its other measurements on the CPU in fp32, peaked at {memory:.1f} GiB of "
                 f"host memory; GPU memory has not been measured.")
    return text


#: The whole offline batch's time target on a 2-core machine (seconds).
BATCH_TARGET_S = 150 * 60


def benchmark_targets(path: Path, batch: Path | None = None) -> pd.DataFrame:
    """The performance targets against a benchmark file's figures (and a batch record):
    one row per target the file has figures for, with the measured value, a verdict and,
    where the file has one, the best value this machine allows: the model's
    matrix-multiply FLOPs at the machine's matrix-multiply speed, against the backbone
    time measured in the same turns."""
    rows = json.loads(path.read_text()).get("rows", [])
    targets = []

    def add(target: str, measured: str, met: bool, bound: str = "") -> None:
        targets.append({"Target": target, "Measured": measured, "Met": "yes" if met else "no",
                        "Best possible here": bound})

    for precision in ("fp32", "bf16"):
        row = _row(rows, "training", profile="paper", mode="feature cache", precision=precision)
        if row:
            ratio = row["speedup_vs_backbone_in_the_loop"]
            bound = row.get("speedup_bound")
            add(f"training, paper size, {precision}: feature cache >= 2x backbone in the loop",
                f"{ratio:.2f}x", ratio >= 2, "" if bound is None else (
                    f"{bound:.2f}x: the step's {row['step_gflop']:.0f} GFLOP at "
                    f"{row['matmul_gflop_per_s']:.0f} GFLOP/s take "
                    f"{row['step_s_at_matmul_peak']:.2f} s, the backbone "
                    f"{row['backbone_s_per_batch']:.2f} s per batch"))
    row = _row(rows, "inference", profile="paper", precision="fp32")
    if row:
        share = row["reconstruction_plus_scoring_vs_backbone"]
        bound = row.get("bound_vs_backbone")
        add("inference, paper size, fp32: reconstruction + scoring <= 60 % of the backbone",
            f"{share:.0%}", share <= 0.6, "" if bound is None else (
                f"{bound:.0%}: the reconstruction's {row['reconstruction_gflop']:.0f} GFLOP "
                f"in {row['reconstruction_s_at_matmul_peak']:.2f} s, and the scoring"))
    row = _row(rows, "evaluation")
    if row:
        add(f"evaluation ({row['mode']}): <= 60 s and <= 4 GiB",
            f"{row['seconds_total']:.1f} s, {row['peak_rss_gib']:.2f} GiB",
            row["seconds_total"] <= 60 and row["peak_rss_gib"] <= 4)
    if batch is not None and batch.is_file():
        record = json.loads(batch.read_text())
        add(f"whole `{record['profile']}` notebook batch <= {duration(BATCH_TARGET_S)}",
            duration(record["wall_time_s"]), record["wall_time_s"] <= BATCH_TARGET_S)
    table = pd.DataFrame(targets)
    if not table.empty and not table["Best possible here"].astype(bool).any():
        table = table.drop(columns="Best possible here")  # a file from before the bounds
    return table


#: Short headers for the benchmark tables' long field names (others: "_" shown as " ").
_BENCHMARK_HEADERS = {
    "images_per_s": "images/s",
    "speedup_vs_backbone_in_the_loop": "x backbone in the loop",
    "speedup_vs_one_process": "x one process",
    "reconstruction_plus_scoring_vs_backbone": "(recon. + score) / backbone",
    "share_backbone": "backbone share",
    "share_reconstruction": "recon. share",
    "share_map + score": "map + score share",
    "seconds_total": "total s",
    "seconds_image_auroc": "image AUROC s",
    "seconds_pixel_auroc": "pixel AUROC s",
    "seconds_aupro": "AUPRO s",
    "peak_rss_gib": "peak RSS GiB",
    "step_gflop": "step GFLOP",
    "step_gflop_per_s": "step GFLOP/s",
    "matmul_gflop_per_s": "matmul GFLOP/s",
    "step_s_at_matmul_peak": "step s at matmul peak",
    "backbone_s_per_batch": "backbone s / batch",
    "speedup_bound": "bound (x)",
    "reconstruction_gflop": "recon. GFLOP",
    "reconstruction_s_at_matmul_peak": "recon. s at matmul peak",
    "bound_vs_backbone": "bound / backbone",
    "eager_images_per_s": "eager images/s",
    "speedup_vs_eager": "x eager",
    "first_epoch_s": "first epoch s (compiling)",
    "serial_images_per_s": "serial images/s",
    "speedup_vs_serial": "x serial",
    "adtr_uses_workers": "workers adtr uses",
    "page_faults_per_batch": "page faults / batch",
    "speedup_vs_glibc_as_it_is": "x glibc as it is",
}


#: Columns that name a benchmark row; they stand in every part of a split table.
_BENCHMARK_KEYS = ("profile", "mode", "precision")


def benchmark_sections(table: pd.DataFrame, width: int = 5) -> list[tuple[str, pd.DataFrame]]:
    """A benchmark table split by its ``benchmark`` column (training, inference, ...): each
    part keeps only the columns it fills, with short headers, and at most ``width`` value
    columns beside the naming ones (a wider part continues in another table, with the rows
    that have values there), so that none is wider than the page. A table without that
    column is one part named ""."""
    if table.empty:
        return []
    if "benchmark" not in table.columns:
        return [("", table)]
    parts = []
    for name, part in table.groupby("benchmark", sort=False):
        part = part.drop(columns="benchmark")
        part = part.loc[:, (part != "").any()].reset_index(drop=True)
        keys = [c for c in part.columns if c in _BENCHMARK_KEYS]
        values = [c for c in part.columns if c not in _BENCHMARK_KEYS]
        for start in range(0, max(1, len(values)), width):
            chunk = values[start:start + width]
            piece = part[keys + chunk]
            if start:
                piece = piece[(piece[chunk] != "").any(axis=1)]
            title = str(name) if not start else f"{name}, continued"
            parts.append((title, piece.reset_index(drop=True).rename(
                columns=lambda c: _BENCHMARK_HEADERS.get(c, c.replace("_", " ")))))
    return parts


def _tidy(value: Any) -> str:
    """A benchmark cell: floats to 3 significant digits, missing values blank."""
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.3g}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)
