import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adtr import profiles
from adtr.model import ADTR, anomaly_map, gaussian_blur, upsample_and_score


def _config(variant: str) -> profiles.RunConfig:
    return profiles.resolve("smoke", variant=variant, image_size=64)


@pytest.mark.parametrize("variant", profiles.VARIANTS)
def test_every_variant_reconstructs_the_input_shape(variant) -> None:
    model = ADTR(40, 4, _config(variant))
    features = torch.randn(3, 40, 4, 4)
    assert model(features).shape == features.shape


def test_variants_are_switches_of_one_model() -> None:
    def kinds(variant: str) -> set[type]:
        return {type(m) for m in ADTR(40, 4, _config(variant)).modules()}

    adtr = ADTR(40, 4, _config("adtr"))
    assert adtr.body.query.shape == (16, 32)  # one learnable vector per position
    assert ADTR(40, 4, _config("no_query")).body.query is None
    assert nn.MultiheadAttention not in kinds("no_attention")
    assert nn.Conv2d in kinds("cnn") and nn.MultiheadAttention not in kinds("cnn")


def _decoder_input(model: ADTR, features: torch.Tensor) -> torch.Tensor:
    seen = []
    hook = model.body.decoder[0].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    model(features)
    hook.remove()
    return seen[0]


def test_decoder_reads_the_learnable_query_not_the_image() -> None:
    a, b = torch.randn(1, 8, 4, 4), torch.randn(1, 8, 4, 4)
    model = ADTR(8, 4, profiles.resolve("smoke")).eval()
    tgt_a, tgt_b = _decoder_input(model, a), _decoder_input(model, b)
    torch.testing.assert_close(tgt_a[0], model.body.query)  # the same for every image
    torch.testing.assert_close(tgt_a, tgt_b)
    model = ADTR(8, 4, profiles.resolve("smoke", variant="no_query")).eval()
    expected = model.input_proj(a.flatten(2).transpose(1, 2))
    torch.testing.assert_close(_decoder_input(model, a), expected)


def test_anomaly_map_is_the_l2_norm_of_the_difference() -> None:
    f = torch.tensor([[[[3.0]], [[0.0]]]])  # (1, 2, 1, 1)
    f_hat = torch.tensor([[[[0.0]], [[4.0]]]])
    assert anomaly_map(f, f_hat).item() == pytest.approx(5.0)


def test_image_score_is_the_max_of_the_average_pooled_map() -> None:
    maps = torch.zeros(1, 4, 4)
    maps[0, 1, 2] = 8.0
    pixel_maps, scores = upsample_and_score(maps, 64, pool=16)
    assert pixel_maps.shape == (1, 64, 64)
    upsampled = F.interpolate(maps[:, None], size=(64, 64), mode="bilinear", align_corners=False)
    brute = max(upsampled[0, 0, i:i + 16, j:j + 16].mean().item()
                for i in range(49) for j in range(49))
    assert scores.item() == pytest.approx(brute, rel=1e-5)
    assert scores.item() < 8.0  # pooling spreads the peak


def test_gaussian_blur_keeps_mass_and_constants() -> None:
    x = torch.zeros(1, 1, 33, 33)
    x[0, 0, 16, 16] = 1.0
    blurred = gaussian_blur(x, 2.0)
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert blurred[0, 0, 16, 16] < 0.05
    flat = gaussian_blur(torch.full((1, 1, 20, 20), 3.0), 1.5)
    np.testing.assert_allclose(flat.numpy(), 3.0, rtol=1e-5)


def test_cpu_dropout_drops_p_scales_the_rest_and_follows_the_torch_seed() -> None:
    from adtr.model import Dropout

    dropout = Dropout(0.1).train()
    x = torch.ones(200_000)
    torch.manual_seed(0)
    y = dropout(x)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.1) < 0.003  # realised p, 4 sigma
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.9))
    torch.manual_seed(0)
    assert torch.equal(dropout(x), y)  # the masks follow torch's generator
    assert not torch.equal(dropout(x), y)
    assert torch.equal(dropout.eval()(x), x)


def test_attention_with_dropout_matches_multihead_attention_without_it() -> None:
    """The written-out attention (explicit weights when its dropout runs on the CPU, SDPA
    otherwise) is nn.MultiheadAttention's, whose parameters it uses."""
    from adtr.model import Attention

    torch.manual_seed(0)
    layer = Attention(32, 4, dropout=1e-9).train()  # dropout path, practically nothing dropped
    x, context = torch.randn(2, 6, 32), torch.randn(2, 9, 32)
    pos_q, pos_k = torch.randn(1, 6, 32), torch.randn(1, 9, 32)
    written_out = layer(x, context, pos_q, pos_k)
    reference = layer.attn(x + pos_q, context + pos_k, context, need_weights=False)[0]
    assert torch.allclose(written_out, layer.norm(x + reference), atol=1e-5)
    layer.eval()  # F.scaled_dot_product_attention
    assert torch.allclose(layer(x, context, pos_q, pos_k), layer.norm(x + reference), atol=1e-5)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_the_query_shared_by_the_batch_gives_the_per_image_result(dropout) -> None:
    """Without dropout the first decoder self-attention runs once on the (1, HW, d) query;
    the output and the query's gradient are those of one copy of the query per image. With
    dropout each image gets its own copy (and its own masks)."""
    torch.manual_seed(0)
    model = ADTR(8, 4, profiles.resolve("smoke", dropout=dropout)).train()
    body, x = model.body, torch.randn(3, 8, 4, 4)

    def reference() -> torch.Tensor:  # the decoder fed one copy of the query per image
        pos = body.pos()[None]
        memory = model.input_proj(x.flatten(2).transpose(1, 2))
        for layer in body.encoder:
            memory = layer(memory, pos)
        tgt = body.query[None].expand(3, -1, -1)
        for layer in body.decoder:
            tgt = layer(tgt, memory, pos)
        return model.output_proj(tgt).transpose(1, 2).reshape(x.shape)

    results = []
    for forward in (model, lambda _: reference()):
        torch.manual_seed(1)  # the same dropout masks for both
        out = forward(x)
        model.zero_grad()
        out.square().sum().backward()
        results.append((out.detach(), body.query.grad.clone()))
    (out, grad), (expected, expected_grad) = results
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(grad, expected_grad)


def test_the_cnn_variant_can_represent_the_identity() -> None:
    """Residual blocks: with every block's second convolution at zero the CNN variant passes
    its tokens through unchanged, the shortcut the paper's Eq. 4 warns of."""
    model = ADTR(40, 4, _config("cnn")).eval()
    for block in model.body.blocks:
        nn.init.zeros_(block.body[-1].weight)
        nn.init.zeros_(block.body[-1].bias)
    tokens = torch.randn(2, 16, 32)
    torch.testing.assert_close(model.body(tokens), tokens)
    assert len(model.body.blocks) == 2  # one block per transformer layer (1 + 1 in smoke)


def test_pca_reconstructs_exactly_at_full_width_and_projects_below_it() -> None:
    from adtr.model import fit_pca

    generator = torch.Generator().manual_seed(0)
    mixing = torch.randn(6, 6, generator=generator)
    features = torch.einsum("dc,ncxy->ndxy", mixing, torch.randn(20, 6, 4, 4, generator=generator))
    full = ADTR(6, 4, profiles.resolve("smoke", variant="pca", hidden_dim=6, num_heads=1))
    fit_pca(full, features)
    torch.testing.assert_close(full(features), features, atol=1e-4, rtol=1e-4)

    narrow = ADTR(6, 4, profiles.resolve("smoke", variant="pca", hidden_dim=2, num_heads=1))
    fit_pca(narrow, features)
    tokens = features.permute(0, 2, 3, 1).reshape(-1, 6).double()
    centred = tokens - tokens.mean(0)
    _, _, right = torch.linalg.svd(centred, full_matrices=False)
    expected = tokens.mean(0) + centred @ right[:2].T @ right[:2]
    got = narrow(features).permute(0, 2, 3, 1).reshape(-1, 6).double()
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="more than the 6 channels"):
        fit_pca(ADTR(6, 4, profiles.resolve("smoke", variant="pca", hidden_dim=8,
                                            num_heads=1)), features)
