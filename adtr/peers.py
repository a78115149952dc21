"""PaDiM and PatchCore as anomalib implements them, run as ADTR's peers on the same data.

The peers are anomalib's code, not ours: its Lightning models (``anomalib.models.Padim``,
``Patchcore``) built with ``pre_trained=False``, their ``TimmFeatureExtractor`` then given
the very ImageNet weights ADTR uses (``backbones.resolve_weights``: the timm cache, or the
weights that ship in a pip package), so nothing is downloaded and no backbone is random.
A run does what anomalib's Lightning hooks do, without its Engine (which wants loggers,
callbacks and a results folder): the torch model's forward in train mode on the normal
images (``training_step``), ``fit()`` (what ``MemoryBankMixin`` calls after the epoch),
and the forward in eval mode on the test images (``validation_step``).

Everything else is this project's, as for ADTR: the images are read and ImageNet-
normalised by ``data.load_image`` at the run's ``image_size`` (anomalib's own
pre-processor would resize to 256 px); the maps are anomalib's raw maps at that size,
without its post-processor, whose min-max normalisation clips scores to [0, 1]; and the
metrics are ``adtr.metrics``' on the masks of ``data.load_masks``.

What is run (``settings``): anomalib's defaults (backbone, layers, options) where the
default backbone's ImageNet weights can be had offline; otherwise the run's backbone
(the offline profiles' EfficientNet-Lite0, whose weights ship in a pip package) with the
feature layers at the strides of anomalib's default layers and anomalib's default
options. On one CPU thread a category of the ``cpu`` profile (60 training and 80 test
images at 160 px) then takes about 10 s with PaDiM and under a minute with PatchCore (most
of it its coreset selection, see ``_fresh_big_blocks``), so the offline profiles need no
cheaper settings than anomalib's.

``anomalib`` is an optional extra (``INSTALL``): ``import adtr.peers`` works without it,
and only building a peer imports it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import platform
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import timm
import torch
from tqdm.auto import tqdm

from adtr import allocator, cost, data, experiments, metrics, pipeline, scores, train
from adtr.backbones import check_backbone_name, resolve_weights
from adtr.errors import AdtrError, ConfigError, WeightsError
from adtr.profiles import RunConfig, with_overrides
from adtr.records import code_digest, environment, run_record
from adtr.schema import RunRecord, RunResult

#: The peers by name (a run's ``variant``) and their labels.
PEERS: dict[str, str] = {"padim": "PaDiM", "patchcore": "PatchCore"}
ANOMALIB_VERSION = "2.7.0"
INSTALL = 'pip install -e ".[peers]"'

#: anomalib 2.7.0's defaults: backbone, layers and options of each model's constructor
#: (PaDiM's ``n_features`` is its value for resnet18, the PaDiM paper's R18-Rd100).
#: ``test_peers`` checks them against the installed anomalib.
DEFAULTS: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    "padim": ("resnet18", ("layer1", "layer2", "layer3"), {"n_features": 100}),
    "patchcore": ("wide_resnet50_2", ("layer2", "layer3"),
                  {"coreset_sampling_ratio": 0.1, "num_neighbors": 9}),
}

#: Images per forward pass (anomalib's default batch size; it does not change the numbers).
BATCH_SIZE = 32


def installed() -> bool:
    """Whether anomalib can be imported (found without importing it: that takes seconds)."""
    return importlib.util.find_spec("anomalib") is not None


def missing_message() -> str:
    """What to install to run the peers, in one sentence."""
    return (f"PaDiM and PatchCore run on anomalib {ANOMALIB_VERSION}, which is not installed "
            f"here; install it with `{INSTALL}`.")


def _anomalib_version() -> str:
    if not installed():
        raise AdtrError(missing_message())
    return importlib.metadata.version("anomalib")


def _model_class(name: str) -> type:
    """anomalib's Lightning class of peer ``name``, imported quietly (anomalib's own import
    warns about timm and DINOv2 deprecations that are not ours to fix)."""
    if not installed():
        raise AdtrError(missing_message())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        models = importlib.import_module("anomalib.models")
    return {"padim": models.Padim, "patchcore": models.Patchcore}[name]


# --- what a peer runs --------------------------------------------------------------------


@dataclass(frozen=True)
class PeerSettings:
    """What decides a peer's numbers besides the data: anomalib's backbone, its feature
    layers (timm module names), the model's options, and why these (``basis``)."""

    name: str
    backbone: str
    layers: tuple[str, ...]
    options: dict[str, Any]
    basis: str = ""

    def to_dict(self) -> dict[str, Any]:
        """As JSON keeps it (the layers a list), for run records and run keys."""
        return {**asdict(self), "layers": list(self.layers)}


@functools.cache
def _feature_info(backbone: str) -> tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]]:
    """(module names, channels, strides) of the feature layers timm offers for ``backbone``
    (the layers anomalib's ``TimmFeatureExtractor`` can return); no weights loaded."""
    check_backbone_name(backbone)
    info = timm.create_model(backbone, features_only=True, pretrained=False).feature_info
    return tuple(info.module_name()), tuple(info.channels()), tuple(info.reduction())


def _strides(backbone: str, layers: tuple[str, ...]) -> tuple[int, ...]:
    names, _, strides = _feature_info(backbone)
    return tuple(strides[names.index(layer)] for layer in layers)


def _channels(backbone: str, layers: tuple[str, ...]) -> int:
    names, channels, _ = _feature_info(backbone)
    return sum(channels[names.index(layer)] for layer in layers)


def _layers_at(backbone: str, strides: tuple[int, ...]) -> tuple[str, ...]:
    """The feature layers of ``backbone`` at ``strides``, or a ConfigError saying which
    strides it has."""
    names, _, offered = _feature_info(backbone)
    missing = [s for s in strides if s not in offered]
    if missing:
        raise ConfigError(f"backbone {backbone} has no feature layer at stride(s) {missing} "
                          f"(it has {dict(zip(names, offered, strict=True))}); the peers take "
                          f"their layers at the strides of anomalib's defaults {list(strides)}")
    return tuple(names[offered.index(s)] for s in strides)


@functools.cache
def _imagenet_source(backbone: str) -> str | None:
    """Where ``backbone``'s ImageNet weights come from offline, or None (once a process)."""
    try:
        return resolve_weights(backbone, "imagenet").source
    except WeightsError:
        return None


def _check_name(name: str) -> None:
    if name not in PEERS:
        raise ConfigError(f"unknown peer {name!r}; choose one of {list(PEERS)}")


def settings(name: str, config: RunConfig) -> PeerSettings:
    """The backbone, layers and options peer ``name`` runs with under ``config``.

    The ``paper`` profile takes anomalib's defaults (``DEFAULTS``) when the default
    backbone's ImageNet weights are found offline. Otherwise, and always in the offline
    profiles, the run's backbone (``config.backbone``) is used, with the feature layers at
    the strides of anomalib's default layers (PaDiM: 4, 8, 16; PatchCore: 8, 16) and
    anomalib's default options; PaDiM keeps ``n_features`` = 100 random channels (or all,
    when the layers have fewer). ``basis`` says which of the two was taken and why.
    """
    _check_name(name)
    if config.weights != "imagenet":
        raise ConfigError(f"the peers run on ImageNet weights (resolved offline), got "
                          f"weights={config.weights!r}; leave weights at 'imagenet'")
    backbone, layers, options = DEFAULTS[name]
    if config.profile == "paper" and _imagenet_source(backbone) is not None:
        return PeerSettings(name, backbone, layers, dict(options),
                            f"anomalib {ANOMALIB_VERSION}'s defaults")
    strides = _strides(backbone, layers)
    own_layers = _layers_at(config.backbone, strides)
    options = dict(options)
    if name == "padim":
        options["n_features"] = min(options["n_features"],
                                    _channels(config.backbone, own_layers))
    why = ("the offline profiles run the run's backbone" if config.profile != "paper" else
           f"anomalib's default backbone {backbone} has no ImageNet weights offline")
    basis = (f"the run's backbone {config.backbone} at the strides {list(strides)} of "
             f"anomalib's default layers {list(layers)} of {backbone}, with anomalib "
             f"{ANOMALIB_VERSION}'s default options ({why})")
    return PeerSettings(name, config.backbone, own_layers, options, basis)


def score_definition(peer: PeerSettings) -> str:
    """How anomalib takes the image score of ``peer`` (what a run record's ``score`` says)."""
    if peer.name == "padim":
        return ("PaDiM (anomalib): the max of the anomaly map (the Mahalanobis distance of "
                "each patch to its position's Gaussian, upsampled bilinearly to the input "
                "and blurred with a Gaussian of sigma 4 px)")
    return (f"PatchCore (anomalib): the largest distance of a test patch to its nearest "
            f"memory-bank patch m*, times 1 - the softmax weight of m* among the test "
            f"patch's distances to the {peer.options['num_neighbors']} nearest neighbours "
            f"of m* in the bank (the PatchCore paper's re-weighting); not the max of the "
            f"map, which is the same distances upsampled nearest-neighbour to the input and "
            f"blurred with a Gaussian of sigma 4 px")


# --- building a peer ---------------------------------------------------------------------


def build(peer: PeerSettings, device: torch.device | str) -> tuple[torch.nn.Module, str]:
    """anomalib's Lightning model of ``peer`` on ``device``, its feature extractor holding
    the resolved ImageNet weights; and where the weights come from.

    The model is built with ``pre_trained=False`` (nothing is downloaded) and without
    anomalib's pre-processor, post-processor, evaluator and visualizer (this project reads
    the images and scores the maps). Raises WeightsError when the backbone's ImageNet
    weights cannot be found offline: a peer never runs on a random backbone. Seed torch
    before building: PaDiM draws its random channels here.
    """
    weights = resolve_weights(peer.backbone, "imagenet")
    if weights.state_dict is None:  # resolve_weights gives None only for weights="random"
        raise WeightsError(f"no ImageNet weights for {peer.backbone}")
    model_class = _model_class(peer.name)
    model = model_class(backbone=peer.backbone, layers=list(peer.layers), pre_trained=False,
                        **peer.options, pre_processor=False, post_processor=False,
                        evaluator=False, visualizer=False)
    extractor = model.model.feature_extractor
    if list(extractor.layers) != list(peer.layers):  # anomalib drops unknown layers silently
        raise ConfigError(f"anomalib's {peer.backbone} extractor returns layers "
                          f"{extractor.layers}, not the {list(peer.layers)} asked for")
    _load_backbone(extractor.feature_extractor, weights.state_dict, peer.backbone)
    return model.to(device).eval(), weights.source


def _load_backbone(backbone: torch.nn.Module, state_dict: dict[str, torch.Tensor],
                   name: str) -> None:
    """Load every tensor of timm's feature model ``backbone`` from ``state_dict`` (the full
    classifier's, which also holds the head): all of them, with their shapes, or a
    WeightsError saying what is missing."""
    wanted = backbone.state_dict()
    missing = [key for key in wanted if key not in state_dict]
    if missing:
        raise WeightsError(f"the ImageNet weights for {name} lack {len(missing)} tensors of "
                           f"anomalib's feature extractor (first: {missing[:3]})")
    try:
        backbone.load_state_dict({key: state_dict[key] for key in wanted}, strict=True)
    except RuntimeError as error:  # a shape that differs
        raise WeightsError(f"the ImageNet weights for {name} do not fit anomalib's feature "
                           f"extractor: {error}") from None


# --- fitting and testing -----------------------------------------------------------------


def _images(samples: list[data.Sample], size: int) -> torch.Tensor:
    """The samples' images as ADTR's backbone sees them: (N, 3, size, size), resized
    bilinearly and ImageNet-normalised by ``data.load_image``."""
    return torch.from_numpy(np.stack([data.load_image(s.image, size)[0] for s in samples]))


def _batches(images: torch.Tensor, device: torch.device, desc: str, progress: bool
             ) -> Iterator[torch.Tensor]:
    starts = range(0, len(images), BATCH_SIZE)
    for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
        yield images[start:start + BATCH_SIZE].to(device)


@contextlib.contextmanager
def _coreset_bar(progress: bool) -> Iterator[None]:
    """PatchCore's coreset selection without its progress bar unless ``progress``: anomalib
    calls tqdm without a way to turn it off."""
    if progress:
        yield
        return
    module = importlib.import_module("anomalib.models.components.sampling.k_center_greedy")
    shown = module.tqdm
    module.tqdm = functools.partial(shown, disable=True)
    try:
        yield
    finally:
        module.tqdm = shown


_M_MMAP_THRESHOLD, _M_MMAP_MAX = -3, -4  # mallopt parameters, from glibc's malloc.h
_GLIBC_MMAP_THRESHOLD, _GLIBC_MMAP_MAX = 128 * 1024, 65536  # glibc's initial values
#: Blocks from this size on get their own mmap during PatchCore's coreset selection.
_MAPPED_FROM = 4 * 2**20


@contextlib.contextmanager
def _fresh_big_blocks(device: torch.device) -> Iterator[None]:
    """glibc's malloc serving blocks of 4 MiB and more with their own mmap while a peer
    fits on the CPU: PatchCore's coreset selection needs it.

    Each of the selection's 2,400 steps (``cpu`` profile) allocates and frees a temporary
    the size of the projected memory bank (24 MB). From glibc's heap the freed ones were
    not always reused: in six of eight runs of one category, seeded alike, the heap grew
    by about a temporary a step, to 23 GB before the kernel killed the process (with or
    without ``adtr.allocator``'s setting). Mapped afresh every step they cost page faults
    (the selection took 40-50 s instead of 7 s on one thread), but memory stays flat.
    Afterwards malloc is put back as ``adtr.allocator`` keeps it (no mmap) when that is
    in force, else at glibc's initial threshold.
    """
    if device.type != "cpu" or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        yield
        return
    libc = ctypes.CDLL(None)
    libc.mallopt(_M_MMAP_MAX, _GLIBC_MMAP_MAX)
    libc.mallopt(_M_MMAP_THRESHOLD, _MAPPED_FROM)
    try:
        yield
    finally:
        if allocator._applied:
            libc.mallopt(_M_MMAP_MAX, 0)
        else:
            libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_MMAP_THRESHOLD)


@torch.no_grad()
def _fit(model: torch.nn.Module, images: torch.Tensor, device: torch.device, desc: str,
         progress: bool) -> None:
    """anomalib's training epoch: the torch model in train mode collects the embeddings of
    every image (``training_step``), then ``fit()`` turns them into the model (PaDiM: a
    Gaussian per position; PatchCore: the coreset memory bank)."""
    model.model.train()
    for batch in _batches(images, device, desc, progress):
        model.model(batch)
    with _coreset_bar(progress), _fresh_big_blocks(device), warnings.catch_warnings():
        # anomalib 2.7.0's PatchCore warns that an argument it is not given is deprecated
        warnings.filterwarnings("ignore", "Argument embeddings is deprecated")
        model.fit()
    model.model.eval()


@torch.no_grad()
def _predict(model: torch.nn.Module, images: torch.Tensor, device: torch.device, desc: str,
             progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """anomalib's raw anomaly maps (N, H, W) at the images' size and image scores (N,)."""
    model.model.eval()
    maps, image_scores = [], []
    for batch in _batches(images, device, desc, progress):
        out = model.model(batch)
        maps.append(out.anomaly_map.reshape(len(batch), *batch.shape[-2:]).float().cpu())
        image_scores.append(out.pred_score.reshape(len(batch)).double().cpu())
    return torch.cat(maps).numpy(), torch.cat(image_scores).numpy()


def fit_peer(name: str, config: RunConfig, run: pipeline.RunData, out_dir: str | Path,
             progress: bool = True) -> RunResult:
    """Fit peer ``name`` on ``run``'s normal training images, score its test set with
    ``adtr.metrics``, write ``OUT/scores.npz`` and ``OUT/metrics.json`` (last); return it.

    torch, numpy and Python are seeded with ``config.seed`` first (PaDiM draws random
    channels, PatchCore a random projection and the coreset's first patch). The record's
    ``cost`` holds the phases of ``adtr.cost``: the backbone's forward passes (timed inside
    anomalib's model), fitting and testing without them; reading the images and the
    metrics are in none.
    """
    _check_name(name)
    if not run.pixel_labels:
        raise AdtrError(f"the peers run on MVTec-layout categories with masks; {run.name!r} "
                        "has image labels only")
    out_dir = Path(out_dir)
    started = time.perf_counter()
    device = train.pick_device(config.device)
    peer = settings(name, config)
    train.seed_everything(config.seed)
    model, source = build(peer, device)
    train_images = _images(run.train, config.image_size)
    test_images = _images(run.test, config.image_size)
    spent: dict[str, float] = {}
    backbone = cost.Stopwatch()
    with backbone.timing(model.model.feature_extractor):
        with cost.measure(spent, "train", device, excluded=backbone):
            _fit(model, train_images, device, f"{run.name} {name} fit", progress)
        with cost.measure(spent, "test", device, excluded=backbone):
            maps, image_scores = _predict(model, test_images, device,
                                          f"{run.name} {name} test", progress)
    spent["backbone_s"] = round(backbone.seconds, 3)
    masks = data.load_masks(run.test, config.image_size)
    values = {"image_auroc": metrics.image_auroc(run.labels, image_scores),
              "pixel_auroc": metrics.pixel_auroc(masks, maps),
              "aupro": metrics.aupro(masks, maps)}
    record = RunRecord(**run_record(
        experiment="peer", variant=name, objective=None, category=run.name, metrics=values,
        config={**config.to_dict(), "peer": peer.to_dict()}, data=run.info,
        backbone={"name": peer.backbone, "weights": source, "layers": list(peer.layers),
                  "channels": int(sum(model.model.feature_extractor.out_dims)),
                  "anomalib": _anomalib_version()},
        seed=config.seed, environment=environment(str(device)), score=score_definition(peer),
        wall_time_s=round(time.perf_counter() - started, 2),
        run_key=peer_key(name, config, run), cost=spent,
        scores=str(out_dir / pipeline.SCORES_FILE)))
    result = RunResult(category=run.name, record=record, **values)
    scores.run_scores(run.labels, image_scores, masks, maps).save(out_dir / pipeline.SCORES_FILE)
    result.write(out_dir / "metrics.json")  # last: a run is finished when this exists
    return result


# --- identity, caching and grids ---------------------------------------------------------


@functools.cache
def _code() -> str:
    # ``experiments`` only places and shares runs (``run_peer``, ``run_grid``): an edit to
    # the notebooks' helpers leaves finished peer runs valid, as it leaves ADTR's; so does
    # an edit to what ADTR's key leaves out (``pipeline.KEY_LEAVES_OUT``: the profiles,
    # whose values the key holds, and the bookkeeping of records and their schema).
    return code_digest(["peers"], leave_out={"experiments", *pipeline.KEY_LEAVES_OUT})


def peer_key(name: str, config: RunConfig, run: pipeline.RunData) -> str:
    """A hash of what decides a peer run's numbers: its settings, image size and seed, the
    kind of device, the weights (which file, by checksum), the digest of its data,
    anomalib's, torch's and timm's versions and the code of the ``adtr`` modules it runs."""
    peer = settings(name, config)
    source = _imagenet_source(peer.backbone)
    if source is None:
        resolve_weights(peer.backbone, "imagenet")  # raises the WeightsError that says how
    payload = json.dumps({
        "peer": peer.to_dict(), "run": run.name, "image_size": config.image_size,
        "seed": config.seed, "device": train.pick_device(config.device).type,
        "weights": source, "data": run.digest, "anomalib": _anomalib_version(),
        "torch": torch.__version__, "timm": timm.__version__, "code": _code(),
    }, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def run_peer(setup: Any, name: str, category: str, seed: int, wait: bool = True
             ) -> RunResult | None:
    """Peer ``name`` on ``category`` with seed ``seed`` and the set-up's (an
    ``experiments.Setup``) parameters, in ``runs/<profile>/<category>/<name>-<key>``; read
    back when it is done already. ``wait=False``: None at once when another process is
    computing this run now."""
    _check_name(name)
    if not installed():
        raise AdtrError(missing_message())
    config = with_overrides(setup.base, seed=seed)
    run = setup.run_data(config, category)
    key = peer_key(name, config, run)
    out = setup.runs_dir / config.profile / category / f"{name}-{key}"
    return experiments.shared_run(out, key, lambda folder: fit_peer(
        name, config, run, folder, progress=False), wait)


def run_grid(setup: Any, progress: bool = True) -> tuple[pd.DataFrame, list[RunRecord]]:
    """Every peer on every category and seed of the set-up (an ``experiments.Setup``): a
    table of metrics in the layout of ``experiments.run_grid`` and the runs' records."""
    jobs = [(name, category, seed) for name in PEERS for category in setup.categories
            for seed in setup.seeds]
    results = experiments.run_all(jobs, lambda job, wait: run_peer(setup, *job, wait=wait),
                                  progress)
    return experiments.results_table(setup, [(*job, result)
                                             for job, result in zip(jobs, results, strict=True)])
