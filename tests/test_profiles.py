import pytest

from adtr import profiles
from adtr.errors import ConfigError


def test_paper_profile_is_the_papers_setting() -> None:
    config = profiles.resolve("paper")
    assert config.backbone == "efficientnet_b4"
    assert config.stages == (0, 1, 2, 3)
    assert config.image_size == 224 and config.image_size // config.feature_stride == 14
    assert (config.epochs, config.batch_size) == (500, 16)
    assert (config.lr, config.weight_decay, config.grad_clip) == (1e-4, 1e-4, 0.1)
    assert (config.num_encoder_layers, config.num_decoder_layers, config.hidden_dim) == (4, 4, 256)
    assert (config.num_heads, config.feedforward_dim, config.dropout) == (8, 1024, 0.1)
    assert config.variant == "adtr" and config.standardize is False


def test_overrides_win_and_none_means_profile_value() -> None:
    config = profiles.resolve("cpu", epochs=3, backbone=None, stages=[4], seed=7)
    assert config.epochs == 3 and config.stages == (4,) and config.seed == 7
    assert config.backbone == profiles.PROFILES["cpu"]["backbone"]
    assert config.to_dict()["stages"] == [4]


@pytest.mark.parametrize(
    ("profile", "overrides", "fragment"),
    [
        ("nope", {}, "unknown profile 'nope'; choose one of ['paper', 'cpu', 'smoke']"),
        ("cpu", {"epoch": 3}, "unknown option(s) ['epoch']"),
        ("cpu", {"epochs": 0}, "epochs must be a positive integer, got 0"),
        ("cpu", {"variant": "vit"}, "unknown variant 'vit'"),
        ("cpu", {"image_size": 100}, "image_size (100) must be a multiple of feature_stride (16)"),
        ("cpu", {"stages": []}, "stages must name at least one"),
        ("cpu", {"device": "tpu"}, "device must be"),
        ("cpu", {"precision": "fp16"},
         "precision must be one of ['auto', 'fp32', 'bf16'], got 'fp16'"),
    ],
)
def test_bad_values_are_refused_with_the_allowed_values(profile, overrides, fragment) -> None:
    with pytest.raises(ConfigError) as error:
        profiles.resolve(profile, **overrides)
    assert fragment in str(error.value)


def test_a_schedule_sits_between_profile_and_explicit_options() -> None:
    oneclass = profiles.resolve("cpu", "oneclass")
    assert oneclass.image_size == profiles.ONECLASS_OVERRIDES["cpu"]["image_size"] == 128
    assert oneclass.hidden_dim == 128 and oneclass.max_train_images == 0
    assert profiles.resolve("cpu", "oneclass", image_size=224).image_size == 224
    assert profiles.resolve("cpu").max_train_images == 60  # main: the first 60 images
    with pytest.raises(ConfigError, match="schedule must be"):
        profiles.resolve("cpu", "fast")
