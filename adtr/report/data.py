"""What data an experiment's numbers come from, and the admonitions and sentences that say
so (loudly when it is the offline synthetic set or the one-class stand-in)."""

from __future__ import annotations

from typing import Any

from adtr.report.formatting import plural
from adtr.report.loading import NOTEBOOKS, Experiment, book_profile

#: The one-class data sets, by the name their records give.
DATASET_NAMES = {"digits": "scikit-learn digits", "cifar10": "CIFAR-10"}
DATASET_DESCRIPTIONS = {"digits": "the handwritten digits bundled with scikit-learn",
                        "cifar10": "CIFAR-10"}
EXTERNAL_DESCRIPTIONS = {"skimage-patches": "grey patches of the natural photographs bundled "
                                            "with scikit-image, scaled like the digits",
                         "cifar100": "CIFAR-100 training images"}


def data_info(exp: Experiment) -> list[dict[str, Any]]:
    """The per-category data descriptions of an experiment's record."""
    return list((exp.record.data or {}).values())


def is_synthetic(exp: Experiment) -> bool:
    return any(d.get("synthetic", False) for d in data_info(exp))


def one_class_data(exp: Experiment) -> dict[str, Any]:
    """The one-class setting's data set description; empty for the MVTec-layout experiments."""
    return (exp.record.dataset or {})


def is_stand_in(exp: Experiment) -> bool:
    """Whether a one-class experiment ran on the offline stand-in instead of CIFAR-10."""
    return bool(one_class_data(exp).get("stand_in", False))


def units(exp: Experiment) -> list[str]:
    """The categories an experiment ran; in the one-class setting, its normal classes."""
    dataset = one_class_data(exp)
    if not dataset:
        return [str(c) for c in (exp.record.categories or [])]
    names = dataset.get("classes", [])
    return [str(names[c]) if isinstance(c, int) and 0 <= c < len(names) else str(c)
            for c in (exp.record.classes or [])]


def data_label(exp: Experiment) -> str:
    """'synthetic' for the offline set, 'MVTec-AD' for real data, else the data set's name
    ('..., stand-in' for the one-class setting's offline stand-in)."""
    dataset = one_class_data(exp)
    if dataset:
        name = DATASET_NAMES.get(dataset.get("name", "?"), dataset.get("name", "?"))
        return f"{name}, stand-in" if is_stand_in(exp) else name
    if is_synthetic(exp):
        return "synthetic"
    names = {d.get("name", "") for d in data_info(exp)}
    return "MVTec-AD" if not names or all("mvtec" in n.lower() for n in names) else ", ".join(
        sorted(names))


def data_note(exp: Experiment | None) -> str:
    """An admonition saying what data the page's numbers come from (and that it is not
    MVTec-AD when it is the offline set)."""
    if exp is None:
        return ""
    if one_class_data(exp):
        return one_class_note(exp)
    categories = ", ".join(exp.record.categories or [])
    infos = data_info(exp)
    name = infos[0].get("name", "?") if infos else "?"
    path = infos[0].get("path", "?") if infos else "?"
    profile = f"profile `{exp.profile}`"
    if is_synthetic(exp):
        text = (f"Computed on the offline synthetic data set ({name}; {categories}; "
                f"{profile}): orders can be set beside the paper's, absolute values cannot.")
        title, kind = "Synthetic data, not MVTec-AD", "warning"
    else:
        text = (f"The numbers on this page were computed on {name} at `{path}`, categories "
                f"{categories} ({profile}).")
        title, kind = f"Data: {data_label(exp)}", "note"
    return _admonition(exp, title, kind, text)


def stale_note(exp: Experiment | None) -> str:
    """A warning when the code has changed since the experiment's notebook wrote these
    results (``stamps.code_changed``): they are shown as computed, not as the code
    would compute them now."""
    from adtr.stamps import code_changed

    if exp is None or not exp.stamp or not code_changed(exp.stamp):
        return ""
    notebook = NOTEBOOKS.get(exp.name, exp.name)
    return (f"```{{admonition}} Computed by an earlier version of the code\n:class: warning\n\n"
            f"The notebook `{notebook}` or the `adtr` code it runs has changed since it wrote "
            f"these results. They are shown as they were computed; `adtr reproduce --profile "
            f"{exp.profile} --only {notebook}` computes them with the code as it is now.\n```")


def _admonition(exp: Experiment, title: str, kind: str, text: str) -> str:
    if exp.profile == "smoke":
        epochs = exp.record.config.get("epochs", "?")
        text += (f" The `smoke` profile trains a tiny model for {epochs} epochs only to check "
                 f"that the code runs: its numbers mean nothing.")
    return f"```{{admonition}} {title}\n:class: {kind}\n\n{text}\n```"


def one_class_note(exp: Experiment) -> str:
    """The one-class page's data admonition: a loud one when the data is the stand-in."""
    dataset, config = one_class_data(exp), exp.record.config
    name, source = dataset.get("name", "?"), dataset.get("source", "?")
    described = DATASET_DESCRIPTIONS.get(name, name)
    height, width = (dataset.get("image_shape") or ["?", "?"])[:2]
    count = int(dataset.get("n_train", 0)) + int(dataset.get("n_test", 0))
    external = (exp.record.external_anomalies or {})
    anomalies = EXTERNAL_DESCRIPTIONS.get(external.get("name"), external.get("name", "?"))
    classes, profile = ", ".join(units(exp)), f"profile `{exp.profile}`"
    if is_stand_in(exp):
        text = (f"Every number and figure on this page was computed on a **stand-in, not on "
                f"CIFAR-10**: {described} (`{source}`), {count:,} images of {height}×{width} px "
                f"upscaled to {config.get('image_size', '?')} px, classes {classes} "
                f"({profile}). ADTR+'s external anomalies are {anomalies}. The paper's "
                f"numbers come from CIFAR-10, a different data set: what can be set beside "
                f"them is the direction, ADTR+ against ADTR, not the values.")
        return _admonition(exp, "Stand-in data, not CIFAR-10", "warning", text)
    text = (f"The numbers on this page were computed on {described} at `{source}`, classes "
            f"{classes} ({profile}). ADTR+'s external anomalies are {anomalies}.")
    return _admonition(exp, f"Data: {data_label(exp)}", "note", text)


def profile_sentence(main: Experiment | None) -> str:
    """What this build shows, in one sentence (from the main experiment's record)."""
    profile = main.profile if main is not None else book_profile()
    if main is None:
        return (f"This build shows the `{profile}` profile, which has no results yet: run "
                f"`adtr reproduce --profile {profile}` and build the book again.")
    seeds = plural(len(main.record.seeds), "seed")
    data = "the offline synthetic data set" if is_synthetic(main) else data_label(main)
    return (f"This build shows the `{profile}` profile: {data}, categories "
            f"{', '.join(main.record.categories or [])}, {seeds} per setting.")


def missing_note(experiment: str, profile: str | None = None) -> str:
    profile = profile or book_profile()
    notebook = NOTEBOOKS.get(experiment, experiment)
    return (f"```{{warning}}\nNo results for this page yet: `results/{profile}/{experiment}/"
            f"results.json` does not exist. Run `adtr reproduce --profile {profile} --only "
            f"{notebook}` and build the book again.\n```")
