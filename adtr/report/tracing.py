"""Provenance: trace every number back to the runs that produced it (data, backbone and
weights, epochs, seeds, device, software, commit), set the resolved parameters beside the
``paper`` profile's, and list the notebooks and profiles for the page on reproducing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from adtr.records import portable_path, project_root
from adtr.report.data import (
    data_info,
    data_label,
    is_stand_in,
    is_synthetic,
    one_class_data,
    units,
)
from adtr.report.formatting import duration, percent
from adtr.report.loading import (
    METRIC_NAMES,
    METRICS,
    NOTEBOOKS,
    PAGES,
    SHORT_TITLES,
    TITLES,
    Experiment,
    label,
)
from adtr.schema import RunRecord


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(v for v in values if v not in (None, "")))


def _run_records(exp: Experiment) -> list[RunRecord]:
    return list(exp.record.runs)


def backbones(exp: Experiment, others: Iterable[Experiment] = ()) -> list[tuple[str, str]]:
    """(backbone, weights source) pairs of the runs; an experiment without run records (the
    t-SNE one reuses the main runs) borrows the weights of other experiments' runs."""
    pairs = _unique((r.backbone["name"], r.backbone.get("weights", "?"))
                    for r in _run_records(exp))
    if pairs:
        return pairs
    name = exp.record.config.get("backbone", "?")
    borrowed = _unique((n, w) for other in others if other is not exp and _run_records(other)
                       for n, w in backbones(other) if n == name)
    return borrowed or [(name, "?")]


def weights_kind(source: str) -> str:
    """The kind of a weights source: 'pip package', 'timm cache', 'file', 'random', ..."""
    for kind in ("pip package", "timm cache", "file", "random", "none"):
        if source.startswith(kind):
            return kind
    return source.split(" (")[0]


def _devices(exp: Experiment) -> list[str]:
    envs = [r.environment for r in _run_records(exp)] or [exp.record.environment]
    return _unique(f"{e.get('device', '?')} ({e.get('device_name', '?')}, "
                   f"{e.get('cpu_count', '?')} CPUs)" for e in envs)


def _software(exp: Experiment) -> tuple[list[str], list[str]]:
    envs = [r.environment for r in _run_records(exp)] + [exp.record.environment]
    versions = _unique(f"Python {e.get('python')}, torch {e.get('torch')}, timm {e.get('timm')}"
                       for e in envs if e)
    commits = _unique(e.get("git_commit") for e in envs if e)
    return versions, commits


def _seeds(exp: Experiment) -> str:
    """The seeds of the experiment's runs (a study can run more than its set-up's, e.g. the
    convergence study's seed check); the record's where it has no runs of its own."""
    runs = _run_records(exp)
    seeds = sorted({r.seed for r in runs}) if runs else list(exp.record.seeds)
    return ", ".join(str(s) for s in seeds)


def _epochs(exp: Experiment) -> str:
    """Epochs trained; ADTR+ runs as 'base + fine-tuning'; runs without training (the PCA
    reference, 0 epochs) named as such, not as '0'."""
    runs = _run_records(exp)
    trained = _unique("none for the PCA reference" if r.variant == "pca" else r.epochs_trained
                      for r in runs if r.base_epochs is None)
    tuned = _unique(f"{r.base_epochs} + {r.epochs_trained} fine-tuning" for r in runs
                    if r.base_epochs is not None)
    if not runs:
        return f"{exp.record.config.get('epochs', '?')} (as main results)"
    parts = [", ".join(str(e) for e in trained)] if trained else []
    if tuned:
        parts.append(f"ADTR+: {', '.join(tuned)}")
    return "; ".join(parts)


def _plus_anomalies(exp: Experiment) -> str:
    """Where an experiment's ADTR+ runs took their anomalies from ('' without ADTR+)."""
    kinds = []
    for run in _run_records(exp):
        anomalies = run.anomalies
        if not anomalies:
            continue
        if anomalies.get("kind") == "confetti":
            kinds.append("confetti noise on the training images (pixel labels, L_px)")
        else:
            kinds.append(f"{anomalies.get('name', '?')}, {anomalies.get('n_images', '?')} "
                         f"images (image labels, L_img)")
    return "; ".join(_unique(kinds))


def _data_fields(exp: Experiment) -> dict[str, str]:
    """The provenance fields about the data: what, where, which categories, how many images."""
    dataset = one_class_data(exp)
    if dataset:
        used = sorted({int(r.data["n_train_used"]) for r in _run_records(exp)
                       if "n_train_used" in r.data})
        each = (f"{used[0]}" if len(used) == 1 else f"{used[0]}–{used[-1]}") if used else "?"
        kind = "stand-in for CIFAR-10" if is_stand_in(exp) else "real"
        return {"Data": f"{dataset.get('name', '?')} ({kind})",
                "Data path": portable_path(dataset["source"]) if dataset.get("source")
                else "?",
                "Classes": ", ".join(units(exp)),
                "Images (train / test)": f"{dataset.get('n_train', '?')} / "
                                         f"{dataset.get('n_test', '?')} (each class's model "
                                         f"trains on its own {each} images)"}
    infos, config = data_info(exp), exp.record.config
    n_train = sum(int(d.get("n_train", 0)) for d in infos)
    limit = int(config.get("max_train_images") or 0)
    n_used = sum(min(int(d.get("n_train", 0)), limit or int(d.get("n_train", 0))) for d in infos)
    n_test = sum(int(d.get("n_test_good", 0)) + int(d.get("n_test_anomalous", 0)) for d in infos)
    data_name = infos[0].get("name", "?") if infos else "?"
    return {
        "Data": f"{data_name} ({'synthetic' if is_synthetic(exp) else 'real'})",
        "Data path": ", ".join(_unique(portable_path(d["path"]) for d in infos
                                       if d.get("path"))),
        "Categories": ", ".join(exp.record.categories or []),
        "Images (train / test)": f"{n_used} / {n_test}" + (
            f" (the first {limit} of each category's {n_train // max(len(infos), 1)} training "
            "images)" if limit else ""),
    }


def provenance(exp: Experiment, others: Iterable[Experiment] = ()) -> dict[str, str]:
    """Everything that produced an experiment's numbers, as display strings."""
    record = exp.record
    versions, commits = _software(exp)
    config = record.config
    size, stride = config.get("image_size", "?"), config.get("feature_stride", 16)
    grid = size // stride if isinstance(size, int) else "?"
    anomalies = _plus_anomalies(exp)
    return {
        "Experiment": exp.title,
        "Notebook": f"notebooks/{exp.notebook}.ipynb",
        "Profile": exp.profile,
        **_data_fields(exp),
        "Input size": f"{size} px ({grid}×{grid} feature grid)",
        "Backbone and weights": "; ".join(f"{n}: {w}" for n, w in backbones(exp, others)),
        "Epochs trained": _epochs(exp),
        **({"ADTR+ anomalies": anomalies} if anomalies else {}),
        "Seeds": _seeds(exp),
        "Runs": str(len(exp.runs)) if not exp.runs.empty else "reuses the main runs",
        "Device": "; ".join(_devices(exp)),
        "Software": "; ".join(versions),
        "Commit": ", ".join(commits),
        "Written": record.written_at,
        "Training time (each model once)": duration(record.wall_time_s),
        "Notebook time": duration(exp.stamp.get("seconds")),
    }


def provenance_summary(experiments: dict[str, Experiment | None]) -> pd.DataFrame:
    """One row per experiment with the fields a reader checks first (details below it)."""
    present = [e for e in experiments.values() if e is not None]
    rows = []
    for exp in present:
        info = provenance(exp, present)
        rows.append({
            "Experiment": SHORT_TITLES.get(exp.name, exp.name), "Data": data_label(exp),
            "Backbone (weights)": "; ".join(f"{n} ({weights_kind(w)})"
                                            for n, w in backbones(exp, present)),
            "Epochs": info["Epochs trained"], "Seeds": info["Seeds"],
            "Device": "; ".join(_unique(e.split(" (")[0] for e in _devices(exp))),
            "Commit": info["Commit"]})
    return pd.DataFrame(rows)


def provenance_detail(exp: Experiment, others: Iterable[Experiment] = ()) -> pd.DataFrame:
    return pd.DataFrame(list(provenance(exp, others).items()), columns=["Field", "Value"])


def produced_by(exp: Experiment, others: Iterable[Experiment] = ()) -> str:
    """One paragraph: what produced the page's numbers, with the executed notebook."""
    info = provenance(exp, others)
    runs = f"{info['Runs']} runs" if not exp.runs.empty else "the main results' models"
    which = "Classes" if "Classes" in info else "Categories"
    text = (f"**Produced by** `{info['Notebook']}` (profile `{exp.profile}`, {runs}). "
            f"Data: {info['Data']}, {which.lower()} {info[which]}. Backbone and weights: "
            f"{info['Backbone and weights']}. Input: {info['Input size']}; images "
            f"(train / test): {info['Images (train / test)']}. Epochs: "
            f"{info['Epochs trained']}; seeds: "
            f"{info['Seeds']}; device: {info['Device']}; commit `{info['Commit']}`; training "
            f"{info['Training time (each model once)']}, notebook {info['Notebook time']}. "
            f"Everything else: {{doc}}`provenance`.")
    if exp.executed_notebook.is_file():
        relative = os.path.relpath(exp.executed_notebook, Path.cwd())
        text += f" The executed notebook: {{download}}`{exp.notebook}.ipynb <{relative}>`."
    return text


def run_table(exp: Experiment) -> pd.DataFrame:
    """Every fit behind an experiment: what it trained on, with which backbone, how long
    (device and commit are in the experiment's provenance)."""
    rows = [{"Variant": label(r.method), "Category": r.category,
             "Seed": r.seed, "Backbone (stages)": f"{r.backbone['name']} ("
             + ", ".join(str(s) for s in r.backbone.get("stages", [])) + ")",
             "Epochs": r.epochs_trained, "Wall time": duration(r.wall_time_s),
             **{METRIC_NAMES[m]: percent(r.metrics.get(m)) for m in METRICS}}
            for r in _run_records(exp)]
    return pd.DataFrame(rows)


def data_table(exp: Experiment) -> pd.DataFrame:
    """Per category: the data set, whether it is synthetic, and its image counts."""
    return pd.DataFrame([{
        "Category": d.get("category"), "Synthetic": "yes" if d.get("synthetic") else "no",
        "Train (good)": d.get("n_train"),
        "Test good": d.get("n_test_good"), "Test anomalous": d.get("n_test_anomalous"),
        "Defect kinds": ", ".join(d.get("defects", [])),
    } for d in data_info(exp)])


def _show_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def config_table(experiments: dict[str, Experiment | None],
                 reference: dict[str, Any]) -> pd.DataFrame:
    """Each resolved parameter beside the ``paper`` profile's value; experiments with the
    same parameters share one column. Parameters that ``reference`` (a current profile) no
    longer has are left out: a record written before a parameter was retired (such as
    ``lr_step_epoch``, now always 80 % of the epochs) groups with those written after."""
    groups: dict[tuple, list[str]] = {}
    configs: dict[tuple, dict[str, Any]] = {}
    for name, exp in experiments.items():
        if exp is None:
            continue
        config = {k: portable_path(v) if k == "data_root" and v else _show_value(v)
                  for k, v in exp.record.config.items() if k in reference}
        key = tuple(sorted(config.items()))
        groups.setdefault(key, []).append(SHORT_TITLES.get(name, name))
        configs[key] = config
    if not groups:
        return pd.DataFrame()
    everyone = len(groups) == 1 and len(next(iter(groups.values()))) > 1
    keys = _unique(k for c in [reference, *configs.values()] for k in c if k != "profile")
    rows = []
    for key in keys:
        paper = _show_value(reference.get(key, "—"))
        values = {_group_name(names, everyone, len(groups)): configs[group].get(key, "—")
                  for group, names in groups.items()}
        same = all(v == paper for v in values.values())
        rows.append({"Parameter": f"`{key}`", "`paper` profile": paper, **values,
                     "Same as `paper`": "yes" if same else "**no**"})
    return pd.DataFrame(rows)


def _group_name(names: list[str], everyone: bool, groups: int) -> str:
    """A column of ``config_table``: the experiments sharing its parameters, in short."""
    if everyone:
        return "Ours: all experiments"
    return "Ours: the others" if len(names) > 3 and groups == 2 else f"Ours: {', '.join(names)}"


def deviations_table(exp: Experiment) -> pd.DataFrame:
    """Every parameter of the experiment's runs that differs from the ``paper`` profile (the
    paper's setting), and the data, for the page that shows the result."""
    from adtr import catalog, profiles

    paper = profiles.resolve("paper").to_dict()
    ours = exp.record.config
    rows = [{"Parameter": "data", "Paper": catalog.get(exp.name).paper_data,
             "Ours": data_label(exp)}]
    for key, value in ours.items():
        if key in ("profile", "data_root", "device", "checkpoint_every", "seed") or \
                key.startswith("plus_"):
            continue
        if _show_value(value) != _show_value(paper.get(key, "—")):
            rows.append({"Parameter": f"`{key}`", "Paper": _show_value(paper.get(key, "—")),
                         "Ours": _show_value(value)})
    for variant in catalog.get(exp.name).variants:  # what a variant changes on top
        for key, value in variant.overrides.items():
            if key not in ("variant", "objective", "backbone", "stages") and \
                    _show_value(value) != _show_value(ours.get(key)):
                rows.append({"Parameter": f"`{key}` ({variant.label})",
                             "Paper": _show_value(paper.get(key, "—")),
                             "Ours": _show_value(value)})
    return pd.DataFrame(rows)


def deviations_of_all(experiments: Iterable[Experiment]) -> pd.DataFrame:
    """``deviations_table`` of several experiments as one table: each row once, with the
    experiments it holds for ('all' when every one)."""
    present = [e for e in experiments if e is not None]
    where: dict[tuple[str, str, str], list[str]] = {}
    for exp in present:
        for row in deviations_table(exp).itertuples(index=False):
            where.setdefault(tuple(row), []).append(SHORT_TITLES.get(exp.name, exp.name))
    return pd.DataFrame([{"Parameter": key[0], "Paper": key[1], "Ours": key[2],
                          "In": "all" if len(names) == len(present) else ", ".join(names)}
                         for key, names in where.items()])


# --- notebooks and profiles ----------------------------------------------------------

def notebook_parameters(notebook: str) -> str:
    """The source of a notebook's ``parameters`` cell (what papermill can set)."""
    path = project_root() / "notebooks" / f"{notebook}.ipynb"
    cells = json.loads(path.read_text())["cells"]
    for cell in cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return "".join(cell["source"])
    return ""


def profiles_table() -> pd.DataFrame:
    """The parameters on which the named profiles differ, one column per profile."""
    from adtr import profiles

    configs = {name: profiles.resolve(name).to_dict() for name in profiles.profile_names()}
    keys = [k for k in next(iter(configs.values())) if k != "profile"
            and len({_show_value(c[k]) for c in configs.values()}) > 1]
    return pd.DataFrame([{"Parameter": f"`{k}`", **{f"`{n}`": _show_value(c[k])
                                                    for n, c in configs.items()}}
                         for k in keys])


def notebooks_table() -> pd.DataFrame:
    """Every experiment notebook with the page that shows it and the folder it writes
    (under ``results/<profile>/``)."""
    return pd.DataFrame([{"Notebook": f"`{notebook}`",
                          "Page": f"{{doc}}`{TITLES[name]} <{PAGES[name]}>`",
                          "Writes": f"`{name}/`"}
                         for name, notebook in NOTEBOOKS.items()])


def notebook_times(experiments: dict[str, Experiment | None]) -> pd.DataFrame:
    """How long each notebook of the rendered profile took (from the batch's stamps)."""
    rows = [{"Notebook": f"`{e.notebook}`", "Experiment": e.title,
             "Notebook time": duration(e.stamp.get("seconds")),
             "Training time (each model once)": duration(e.record.wall_time_s)}
            for e in experiments.values() if e is not None]
    return pd.DataFrame(rows)
