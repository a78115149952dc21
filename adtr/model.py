"""The reconstruction model of ADTR and its Table 4 ablation variants.

Tokens are the H*W positions of the feature map. The default (``variant="adtr"``) is
the paper's model: a linear projection C -> d, a transformer encoder over the tokens,
a transformer decoder whose input is a learnable *auxiliary query* (one vector per
position, not computed from the image) that cross-attends to the encoder output, and a
projection d -> C. Learned row/column positional embeddings are added to queries and
keys in every attention layer (DETR style). Layers are post-norm with ReLU.

The query is the paper's guard against copying the input: a decoder fed by the input
itself can learn the identity (the paper's Eq. 4). A decoder fed by a fixed query still
reaches the input through cross-attention (its positional embedding lets a query attend
to the token at its own position), so the guard is a matter of degree, measured as the
pass-through of ``adtr.stats.pass_through`` (the shortcut page).

Variants (all share the projections and the loss):
- ``no_query``: the decoder's input is the projected input tokens instead of the query.
- ``no_attention``: attention is removed; each token goes through the same number of
  feed-forward blocks (a token-wise MLP). There is nothing to attend to, so no query.
- ``cnn``: residual 3x3 convolution blocks on the feature map, of similar capacity. The
  residual path lets it represent the identity, the shortcut the paper warns of.
- ``pca``: no learning, a reference: the residual of the projection on the training
  features' first d principal components (``fit_pca``), the closed-form linear
  reconstruction at the same width.
- ``pixels``: the ``adtr`` model itself; the difference is its input (patch-embedded raw
  pixels instead of backbone features, see ``adtr.backbones.PixelPatches``).
"""

from __future__ import annotations

import numpy as np
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


class Dropout(nn.Module):
    """``nn.Dropout(p)`` whose masks, on the CPU, come from numpy's SFC64 generator.

    The function is nn.Dropout's: in training each element is zeroed with probability p and
    the others are scaled by 1 / (1 - p); in eval() it is the identity. Only the source of
    the random mask differs. torch's CPU generator (a Mersenne twister, ~8 ns per element)
    made the masks ~40 % of a paper-size CPU training step; SFC64 makes 16 random bits in
    under 1 ns, and turning them into the mask costs about as much again.

    - Probability: an element is dropped when its 16 random bits, read as a signed integer,
      are below -2**15 + round(p * 2**16), so the realised probability is
      round(p * 2**16) / 2**16, within 2**-17 < 8e-6 of p (0.1000061 for p = 0.1).
    - Reproducibility: every call seeds a fresh SFC64 with one integer drawn from torch's
      global generator, so ``torch.manual_seed`` fixes the masks and a checkpoint's
      ``torch.get_rng_state()`` resumes them; there is no other state to save.
    - Other devices (CUDA's generator is fast) use ``F.dropout``.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.threshold = -(2**15) + round(p * 2**16)

    @property
    def active(self) -> bool:
        return self.training and self.p > 0

    def forward(self, x: Tensor) -> Tensor:
        if not self.active:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        seed = int(torch.randint(2**63 - 1, (), dtype=torch.int64))
        words = np.random.SFC64(seed).random_raw(-(-x.numel() // 4))  # 4 x 16 bits each
        bits = words.view(np.int16)[:x.numel()].reshape(x.shape)
        # numpy makes the float mask in one pass; torch's bool -> float copy is slower
        mask = np.multiply(bits >= self.threshold, 1 / (1 - self.p), dtype=np.float32)
        return x * torch.from_numpy(mask).to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class FeedForward(nn.Module):
    """Linear -> ReLU -> dropout -> Linear, with a post-norm residual."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(  # in place: the first Linear's output is not kept
            nn.Linear(dim, hidden), nn.ReLU(inplace=True), Dropout(dropout),
            nn.Linear(hidden, dim),
        )
        self.dropout = Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        # On (tokens, dim) rows: a Linear's output for a 3-d input is a view, and autograd
        # turns an in-place ReLU on a view into copies of the whole hidden layer (CopySlices)
        # in the backward pass (a tenth of a CPU step's operator time in the profiler, about
        # 1 % of its wall time when measured side by side).
        out = self.net(x.flatten(0, -2)).view_as(x)
        return self.norm(x + self.dropout(out))


class Attention(nn.Module):
    """Multi-head attention with a post-norm residual; positions are added to q and k.

    The parameters live in ``self.attn``, an ``nn.MultiheadAttention``, for its
    initialisation and state-dict layout. Its forward is not used: q, k and v have three
    different inputs here (the values get no positions), and for those the module
    transposes and copies them first. Attention itself is ``F.scaled_dot_product_attention``
    (a fused kernel, with dropout on CUDA). Only when training on the CPU with dropout are
    the weights softmax(q k^T / sqrt(d / heads)) formed explicitly, so that our fast
    ``Dropout`` can apply to them.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.attn_dropout = Dropout(dropout)  # on the attention weights, in place of attn's
        self.dropout = Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, context: Tensor, pos_q: Tensor, pos_k: Tensor) -> Tensor:
        w_q, w_k, w_v = self.attn.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.attn.in_proj_bias.chunk(3)

        def heads(t: Tensor) -> Tensor:  # (B, L, d) -> (B, heads, L, d / heads)
            return t.unflatten(-1, (self.attn.num_heads, -1)).transpose(1, 2)

        q = heads(F.linear(x + pos_q, w_q, b_q))
        k = heads(F.linear(context + pos_k, w_k, b_k))
        v = heads(F.linear(context, w_v, b_v))
        if self.attn_dropout.active and x.device.type == "cpu":
            weights = torch.softmax((q * self.attn.head_dim**-0.5) @ k.transpose(-2, -1), -1)
            out = self.attn_dropout(weights) @ v
        else:
            p = self.attn_dropout.p if self.attn_dropout.active else 0.0
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        out = self.attn.out_proj(out.transpose(1, 2).flatten(2))
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
        # A (1, HW, d) query (see TransformerReconstructor) becomes one copy per image here.
        tgt = tgt.expand(memory.shape[0], -1, -1)
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
        self.dropout_p = p
        self.query = nn.Parameter(torch.zeros(grid * grid, dim)) if use_query else None
        if self.query is not None:
            nn.init.normal_(self.query, std=0.02)

    def forward(self, tokens: Tensor) -> Tensor:
        pos = self.pos()[None]
        memory = tokens
        for layer in self.encoder:
            memory = layer(memory, pos)
        if self.query is None:
            tgt = tokens
        elif self.training and self.dropout_p > 0:
            tgt = self.query[None].expand(tokens.shape[0], -1, -1)  # a dropout mask per image
        else:
            # The same for every image: the first decoder self-attention runs on it once.
            tgt = self.query[None]
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


class ResidualBlock(nn.Module):
    """x + conv(ReLU(BN(conv(x)))): 3x3 convolutions with a skip, so the identity is one
    setting of the weights (the second convolution at zero)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.BatchNorm2d(dim),
                                  nn.ReLU(), nn.Conv2d(dim, dim, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ConvReconstructor(nn.Module):
    """``cnn``: residual blocks on the token grid, one per transformer layer: 18 d^2
    weights a block against 12 d^2 (encoder) and 16 d^2 (decoder) a transformer layer."""

    def __init__(self, dim: int, grid: int, config: RunConfig) -> None:
        super().__init__()
        depth = config.num_encoder_layers + config.num_decoder_layers
        self.grid = grid
        self.blocks = nn.Sequential(*(ResidualBlock(dim) for _ in range(depth)))

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
        elif config.variant == "pca":  # the projections are set by fit_pca
            self.body = nn.Identity()
        else:  # guarded by profiles.resolve; kept for direct construction
            raise ValueError(f"unknown variant {config.variant!r}")

    def forward(self, features: Tensor) -> Tensor:
        batch, channels, height, width = features.shape
        tokens = self.input_proj(features.flatten(2).transpose(1, 2))
        out = self.output_proj(self.body(tokens))
        return out.transpose(1, 2).reshape(batch, channels, height, width)


@torch.no_grad()
def fit_pca(model: ADTR, features: Tensor) -> None:
    """Make a ``pca`` model the projection on the first d principal components of the
    training tokens: f_hat = m + W W^T (f - m), W the top-d eigenvectors of their
    covariance (computed in float64)."""
    if model.variant != "pca":
        raise ValueError(f"fit_pca needs a 'pca' model, not {model.variant!r}")
    tokens = features.flatten(2).transpose(1, 2).reshape(-1, features.shape[1]).double()
    mean = tokens.mean(dim=0)
    centred = tokens - mean
    _, vectors = torch.linalg.eigh(centred.T @ centred / max(1, len(tokens) - 1))
    dim = model.input_proj.out_features
    if dim > vectors.shape[1]:
        raise ValueError(f"hidden_dim {dim} is more than the {vectors.shape[1]} channels")
    top = vectors[:, -dim:].flip(1)  # (C, d), largest eigenvalue first
    model.input_proj.weight.copy_(top.T)
    model.input_proj.bias.copy_(-(top.T @ mean))
    model.output_proj.weight.copy_(top)
    model.output_proj.bias.copy_(mean)


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
    # The pool x pool mean as a mean over rows of means over columns: 2 * pool additions per
    # output instead of pool**2 (5x faster at 224 px), the same up to float rounding.
    pooled = F.avg_pool2d(F.avg_pool2d(pixel_maps, (pool, 1), stride=1), (1, pool), stride=1)
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
