"""The results format: what every writer puts in a result file and every reader gets back.

Two files carry results:
- ``<run>/metrics.json``, one training run: a ``RunResult`` (metrics and a ``RunRecord``);
- ``results/<profile>/<experiment>/results.json``, one experiment: an
  ``ExperimentResults`` (a row per run, a summary row per variant, the paper's values set
  beside them, tables of its own, and an ``ExperimentRecord`` holding every run's record).

Metrics are fractions in [0, 1]. ``to_dict`` / ``from_dict`` are the JSON layout; reading
refuses a file with a missing or an unknown field, naming the file and the field, so a
writer cannot drift from the reader unnoticed. Kept free of torch (the book reads it).
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from adtr.errors import SchemaError
from adtr.records import portable_path, write_json

#: The metrics every MVTec-layout run reports, and their names for readers.
METRICS = ("image_auroc", "pixel_auroc", "aupro")
METRIC_NAMES = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC", "aupro": "AUPRO"}


def unit_column(columns: Any) -> str:
    """The column of a runs table (its column names) that names what each model was
    trained on: "category" (MVTec-layout runs) or "class" (one-class runs)."""
    return "class" if "class" in columns else "category"


T = TypeVar("T")


def _build(cls: type[T], values: Any, where: str) -> T:
    """``cls(**values)`` after checking the keys against the dataclass's fields."""
    if not isinstance(values, dict):
        raise SchemaError(f"{where}: expected an object for {cls.__name__}, got "
                          f"{type(values).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SchemaError(f"{where}: unknown field(s) {unknown} for {cls.__name__}; known: "
                          f"{sorted(known)}")
    required = [name for name, f in known.items()
                if f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in values]
    if missing:
        raise SchemaError(f"{where}: {cls.__name__} lacks {missing}")
    return cls(**values)


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    """Without the optional fields that are unset (None)."""
    return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class RunRecord:
    """What one run was: parameters, data, backbone, machine, and how it went."""

    written_at: str
    experiment: str  # "fit" or "evaluate"
    variant: str
    category: str
    metrics: dict[str, float]
    config: dict[str, Any]
    data: dict[str, Any]
    backbone: dict[str, Any]
    seed: int
    environment: dict[str, Any]
    objective: str | None = None  # None in records written before objectives had a name
    score: str | None = None  # how the image score is taken from the map
    epochs_trained: int | None = None
    loss_history: list[float] | None = None
    lr_history: list[float] | None = None  # each epoch's learning rate (None: not recorded)
    wall_time_s: float | None = None
    checkpoint: str | None = None
    run_key: str | None = None
    trained_on: str | None = None  # evaluate: the category the checkpoint was trained on
    base_checkpoint: str | None = None  # ADTR+: the ADTR model it fine-tuned
    base_epochs: int | None = None
    anomalies: dict[str, Any] | None = None  # ADTR+: where its anomalies came from
    # the identity-shortcut statistics of the test set at checkpoints (``pipeline.fit``)
    probes: list[dict[str, float]] | None = None
    # seconds and peak memory (MiB above the start) of training and testing (``adtr.cost``)
    cost: dict[str, float] | None = None
    units: list[str] | None = None  # a unified run: the categories it was trained on
    scores: str | None = None  # the test set's resamplable scores (``pipeline.SCORES_FILE``)

    @property
    def method(self) -> str:
        """The variant's name in an experiment: ADTR+ ("adtr_plus") or the architecture."""
        return "adtr_plus" if self.objective == "adtr_plus" else self.variant

    def to_dict(self) -> dict[str, Any]:
        return _compact(asdict(self))

    @classmethod
    def from_dict(cls, values: Any, where: str = "run record") -> RunRecord:
        return _build(cls, values, where)


@dataclass(frozen=True)
class RunResult:
    """``metrics.json`` of one run: the metrics of its test set and its record."""

    category: str
    image_auroc: float
    record: RunRecord
    pixel_auroc: float | None = None  # None without pixel labels (the one-class setting)
    aupro: float | None = None

    def metrics(self) -> dict[str, float]:
        return {m: getattr(self, m) for m in METRICS if getattr(self, m) is not None}

    def to_dict(self) -> dict[str, Any]:
        return {**self.metrics(), "category": self.category, "record": self.record.to_dict()}

    @classmethod
    def from_dict(cls, values: Any, where: str = "run result") -> RunResult:
        values = dict(values) if isinstance(values, dict) else values
        if isinstance(values, dict) and "record" in values:
            values["record"] = RunRecord.from_dict(values["record"], f"{where}: record")
        return _build(cls, values, where)

    def write(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def read(cls, path: str | Path) -> RunResult:
        return cls.from_dict(_read_json(path), str(path))


@dataclass(frozen=True)
class RunRow:
    """One run of an experiment, a row of ``runs.csv``."""

    variant: str
    seed: int
    image_auroc: float
    wall_time_s: float
    category: str | None = None  # MVTec-layout runs
    class_name: str | None = None  # one-class runs ("class" in the files)
    pixel_auroc: float | None = None
    aupro: float | None = None
    backbone: str | None = None
    epochs: int | None = None

    def to_dict(self) -> dict[str, Any]:
        values = _compact(asdict(self))
        order = ["variant", "category", "class_name", "seed", *METRICS, "backbone", "epochs",
                 "wall_time_s"]
        values = {key: values[key] for key in order if key in values}
        return {("class" if k == "class_name" else k): v for k, v in values.items()}

    @classmethod
    def from_dict(cls, values: Any, where: str = "run row") -> RunRow:
        if isinstance(values, dict):
            values = {("class_name" if k == "class" else k): v for k, v in values.items()}
        return _build(cls, values, where)


@dataclass(frozen=True)
class SummaryRow:
    """One variant of an experiment: means and standard deviations over seeds (of the means
    over categories or classes)."""

    variant: str
    seeds: int
    mean: dict[str, float]
    std: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, **{f"{m}_mean": v for m, v in self.mean.items()},
                **{f"{m}_std": v for m, v in self.std.items()}, "seeds": self.seeds}

    @classmethod
    def from_dict(cls, values: Any, where: str = "summary row") -> SummaryRow:
        if not isinstance(values, dict) or not {"variant", "seeds"} <= set(values):
            raise SchemaError(f"{where}: a summary row needs 'variant' and 'seeds', got "
                              f"{values!r}")
        rest = {k: v for k, v in values.items() if k not in ("variant", "seeds")}
        bad = sorted(k for k in rest if not k.endswith(("_mean", "_std"))
                     or k.rsplit("_", 1)[0] not in METRICS)
        if bad:
            raise SchemaError(f"{where}: unknown field(s) {bad} for SummaryRow")
        return cls(values["variant"], int(values["seeds"]),
                   {k[:-5]: v for k, v in rest.items() if k.endswith("_mean")},
                   {k[:-4]: v for k, v in rest.items() if k.endswith("_std")})


def model_seconds(runs: list[RunRecord]) -> dict[str | int, float]:
    """The wall time of each trained model among ``runs``, by run key (a record without one
    counts as a model of its own): a model scored on several test sets (the unified model,
    once per category) has a record per test set, all with its run key, each timed from the
    start of its training to that test set's end, so the longest of them is the model's."""
    seconds: dict[str | int, float] = {}
    for i, run in enumerate(runs):
        key = run.run_key or i
        seconds[key] = max(seconds.get(key, 0.0), run.wall_time_s or 0.0)
    return seconds


def training_seconds(runs: list[RunRecord]) -> float:
    """The summed wall time of ``runs``, each trained model once (``model_seconds``)."""
    return float(sum(model_seconds(runs).values()))


@dataclass(frozen=True)
class ExperimentRecord:
    """What an experiment ran: profile, parameters, data, machine, and every run's record."""

    written_at: str
    experiment: str
    profile: str
    config: dict[str, Any]
    seeds: list[int]
    environment: dict[str, Any]
    wall_time_s: float | None = None
    runs: list[RunRecord] = field(default_factory=list)
    categories: list[str] | None = None  # MVTec-layout experiments
    data: dict[str, Any] | None = None
    dataset: dict[str, Any] | None = None  # one-class experiments
    classes: list[int] | None = None
    external_anomalies: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        values = _compact({f.name: getattr(self, f.name) for f in fields(self)})
        if self.runs:
            values["runs"] = [run.to_dict() for run in self.runs]
        else:  # an experiment that reads runs without training them (Fig. 5)
            values.pop("runs")
        return values

    @classmethod
    def from_dict(cls, values: Any, where: str = "record") -> ExperimentRecord:
        if isinstance(values, dict):
            values = {**values, "runs": [RunRecord.from_dict(r, f"{where}: run {i}")
                                         for i, r in enumerate(values.get("runs", []))]}
        return _build(cls, values, where)


#: Tables an experiment may add to its file beside runs and summary.
TABLES = ("per_category", "per_class", "separation", "intervals", "shortcut", "sensitivity",
          "cost", "peers", "defect_kinds",
          # the convergence study (``adtr.convergence``)
          "rule", "rule_by_tolerance", "rule_by_window", "doubling_gain", "steady_schedule",
          "flattened",
          "against_long", "seed_check", "labels", "long_intervals", "book_intervals")


@dataclass(frozen=True)
class ExperimentResults:
    """``results.json`` of one experiment."""

    experiment: str
    record: ExperimentRecord
    runs: list[RunRow] = field(default_factory=list)
    summary: list[SummaryRow] = field(default_factory=list)
    paper: dict[str, Any] = field(default_factory=dict)  # the paper's values (a copy)
    tables: dict[str, Any] = field(default_factory=dict)  # keys from TABLES

    def to_dict(self) -> dict[str, Any]:
        unknown = sorted(set(self.tables) - set(TABLES))
        if unknown:
            raise SchemaError(f"unknown table(s) {unknown}; known: {list(TABLES)}")
        values: dict[str, Any] = {"experiment": self.experiment}
        if self.summary or self.runs:
            values.update(summary=[row.to_dict() for row in self.summary],
                          runs=[row.to_dict() for row in self.runs], paper=self.paper)
        return {**values, **self.tables, "record": self.record.to_dict()}

    @classmethod
    def from_dict(cls, values: Any, where: str = "results") -> ExperimentResults:
        if not isinstance(values, dict) or "experiment" not in values or "record" not in values:
            raise SchemaError(f"{where}: expected an object with 'experiment' and 'record'")
        unknown = sorted(set(values) - {"experiment", "record", "runs", "summary", "paper",
                                        *TABLES})
        if unknown:
            raise SchemaError(f"{where}: unknown field(s) {unknown} for ExperimentResults")
        return cls(
            experiment=values["experiment"],
            record=ExperimentRecord.from_dict(values["record"], f"{where}: record"),
            runs=[RunRow.from_dict(r, f"{where}: run row {i}")
                  for i, r in enumerate(values.get("runs", []))],
            summary=[SummaryRow.from_dict(r, f"{where}: summary row {i}")
                     for i, r in enumerate(values.get("summary", []))],
            paper=dict(values.get("paper", {})),
            tables={k: values[k] for k in TABLES if k in values})

    def write(self, path: str | Path) -> Path:
        """Write the file, with every recorded machine path made portable
        (``records.portable_path``): a published result says where its data lay in the
        project, not on the machine that computed it."""
        return write_json(path, _portable(self.to_dict()))

    @classmethod
    def read(cls, path: str | Path) -> ExperimentResults:
        return cls.from_dict(_read_json(path), str(path))


#: The fields of a record that hold a path on the machine that wrote it.
PATH_FIELDS = frozenset({"data_root", "path", "source", "folder", "checkpoint",
                         "base_checkpoint", "scores"})


def _portable(value: Any, key: str = "") -> Any:
    """``value`` with each absolute path in a ``PATH_FIELDS`` field replaced by its portable
    form (``records.portable_path``); other strings are left as they are."""
    if isinstance(value, dict):
        return {k: _portable(item, str(k)) for k, item in value.items()}
    if isinstance(value, list | tuple):
        return [_portable(item, key) for item in value]
    if key in PATH_FIELDS and isinstance(value, str | Path) and Path(value).is_absolute():
        return portable_path(value)
    return value


def _read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise SchemaError(f"cannot read result file {path}: {error}") from None
