"""The reconstruction model of ADTR and its Table 4 ablation variants.

Tokens are the H*W positions of the feature map. The default (``variant="adtr"``) is
the paper's model: a linear projection C -> d, a transformer encoder over the tokens,
a transformer decoder whose input is a learnable *auxiliary query* (one vector per
position, not computed from the image) that cross-attends to the encoder output, and a
projection d -> C. Learned row/column positional embeddings are added to queries and
keys in every attention layer (DETR style). Layers are post-norm with ReLU.

The query is what keeps the model from copying its input: a decoder fed by the input
itself can learn the identity (the paper's Eq. 4), a decoder fed by a fixed query can
only produce what attention over the encoded tokens lets it assemble from normal data.

Variants (all share the projections and the loss):
- ``no_query``: the decoder's input is the projected input tokens instead of the query.
- ``no_attention``: attention is removed; each token goes through the same number of
  feed-forward blocks (a token-wise MLP). There is nothing to attend to, so no query.
- ``cnn``: a convolutional encoder-decoder of similar depth on the feature map.
- ``pixels``: the ``adtr`` model itself; the difference is its input (patch-embedded raw
  pixels instead of backbone features, see ``adtr.backbones.PixelPatches``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adtr.profiles import RunConfig


class PositionEmbedding(nn.Module):
    """Learned row and column embeddings (d/2 each), concatenated to one d-vector."""

    def __init__(self, height: int, width: int, dim: int) -> None:
        super().__init__()
        self.rows = nn.Parameter(torch.empty(height, dim // 2))
        self.cols = nn.Parameter(torch.empty(width, dim // 2))
        nn.init.uniform_(self.rows)
        nn.init.uniform_(self.cols)

    def forward(self) -> Tensor:
        height, width = self.rows.shape[0], self.cols.shape[0]
        grid = torch.cat(
            [
                self.rows[:, None, :].expand(height, width, -1),
                self.cols[None, :, :].expand(height, width, -1),
            ],
            dim=-1,
        )
        return grid.reshape(height * width, -1)  # (HW, d)


class FeedForward(nn.Module):
    """Linear -> ReLU -> dropout -> Linear, with a post-norm residual."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.dropout(self.net(x)))


class Attention(nn.Module):
    """Multi-head attention with a post-norm residual; positions are added to q and k."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, context: Tensor, pos_q: Tensor, pos_k: Tensor) -> Tensor:
        out = self.attn(x + pos_q, context + pos_k, context, need_weights=False)[0]
        return self.norm(x + self.dropout(out))


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = Attention(dim, heads, dropout)
        self.ffn = FeedForward(dim, hidden, dropout)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        return self.ffn(self.self_attn(x, x, pos, pos))


class DecoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = Attention(dim, heads, dropout)
        self.cross_attn = Attention(dim, heads, dropout)
        self.ffn = FeedForward(dim, hidden, dropout)

    def forward(self, tgt: Tensor, memory: Tensor, pos: Tensor) -> Tensor:
        tgt = self.self_attn(tgt, tgt, pos, pos)
        tgt = self.cross_attn(tgt, memory, pos, pos)
        return self.ffn(tgt)


class TransformerReconstructor(nn.Module):
    """Encoder over the input tokens, decoder fed by the auxiliary query (or the input)."""

    def __init__(self, dim: int, grid: int, config: RunConfig, use_query: bool) -> None:
        super().__init__()
        heads, hidden, p = config.num_heads, config.feedforward_dim, config.dropout
        self.pos = PositionEmbedding(grid, grid, dim)
        self.encoder = nn.ModuleList(
            EncoderLayer(dim, heads, hidden, p) for _ in range(config.num_encoder_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(dim, heads, hidden, p) for _ in range(config.num_decoder_layers)
        )
        self.query = nn.Parameter(torch.zeros(grid * grid, dim)) if use_query else None
        if self.query is not None:
            nn.init.normal_(self.query, std=0.02)

    def forward(self, tokens: Tensor) -> Tensor:
        pos = self.pos()[None]
        memory = tokens
        for layer in self.encoder:
            memory = layer(memory, pos)
        tgt = tokens if self.query is None else self.query[None].expand(tokens.shape[0], -1, -1)
        for layer in self.decoder:
            tgt = layer(tgt, memory, pos)
        return tgt


class TokenMLP(nn.Module):
    """``no_attention``: the transformer's feed-forward blocks alone, token by token."""

    def __init__(self, dim: int, config: RunConfig) -> None:
        super().__init__()
        depth = config.num_encoder_layers + config.num_decoder_layers
        self.blocks = nn.Sequential(
            *(FeedForward(dim, config.feedforward_dim, config.dropout) for _ in range(depth))
        )

    def forward(self, tokens: Tensor) -> Tensor:
        return self.blocks(tokens)


class ConvReconstructor(nn.Module):
    """``cnn``: 3x3 conv blocks (conv -> BN -> ReLU) on the token grid, same depth."""

    def __init__(self, dim: int, grid: int, config: RunConfig) -> None:
        super().__init__()
        depth = config.num_encoder_layers + config.num_decoder_layers
        self.grid = grid
        self.blocks = nn.Sequential(
            *(
                nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.BatchNorm2d(dim), nn.ReLU())
                for _ in range(depth)
            )
        )

    def forward(self, tokens: Tensor) -> Tensor:
        batch, _, dim = tokens.shape
        x = tokens.transpose(1, 2).reshape(batch, dim, self.grid, self.grid)
        return self.blocks(x).flatten(2).transpose(1, 2)


class ADTR(nn.Module):
    """Reconstructs a (B, C, H, W) feature map; ``variant`` selects the ablation."""

    def __init__(self, in_channels: int, grid: int, config: RunConfig) -> None:
        super().__init__()
        dim = config.hidden_dim
        self.variant = config.variant
        self.input_proj = nn.Linear(in_channels, dim)
        self.output_proj = nn.Linear(dim, in_channels)
        if config.variant in ("adtr", "pixels", "no_query"):
            self.body = TransformerReconstructor(dim, grid, config, config.variant != "no_query")
        elif config.variant == "no_attention":
            self.body = TokenMLP(dim, config)
        elif config.variant == "cnn":
            self.body = ConvReconstructor(dim, grid, config)
        else:  # guarded by profiles.resolve; kept for direct construction
            raise ValueError(f"unknown variant {config.variant!r}")

    def forward(self, features: Tensor) -> Tensor:
        batch, channels, height, width = features.shape
        tokens = self.input_proj(features.flatten(2).transpose(1, 2))
        out = self.output_proj(self.body(tokens))
        return out.transpose(1, 2).reshape(batch, channels, height, width)


def reconstruction_loss(features: Tensor, reconstruction: Tensor) -> Tensor:
    """MSE over positions and channels (the paper's loss up to the constant 1/C)."""
    return F.mse_loss(reconstruction, features)


def anomaly_map(features: Tensor, reconstruction: Tensor) -> Tensor:
    """s(u) = ||f(:, u) - f_hat(:, u)||_2 on the feature grid: (B, H, W)."""
    return torch.linalg.vector_norm(features - reconstruction, dim=1)


def upsample_and_score(
    maps: Tensor, image_size: int, pool: int, smoothing_sigma: float = 0.0
) -> tuple[Tensor, Tensor]:
    """Pixel maps at the input size and image scores (max of the average-pooled map).

    ``pool`` is the average-pool kernel in input pixels; UniAD uses 16 at 224 px.
    """
    pixel_maps = F.interpolate(maps[:, None], size=(image_size, image_size), mode="bilinear",
                               align_corners=False)
    if smoothing_sigma > 0:
        pixel_maps = gaussian_blur(pixel_maps, smoothing_sigma)
    pooled = F.avg_pool2d(pixel_maps, kernel_size=pool, stride=1)
    scores = pooled.flatten(1).amax(dim=1)
    return pixel_maps[:, 0], scores


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of a (B, 1, H, W) tensor with a 4-sigma kernel."""
    radius = max(1, int(4 * sigma + 0.5))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
