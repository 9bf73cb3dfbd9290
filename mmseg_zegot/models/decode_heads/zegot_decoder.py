# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The class-query transformer decoder of ZegOT's head (spec §7).

Shape shorthand: B images, K class queries, M = h·w pixel tokens, C width,
H attention heads, d = C / H head width.

Adapted from ZegCLIP's ``TPN_Decoder`` (``models/decode_heads/decode_seg.py``
of https://github.com/ZiqinZhou66/ZegCLIP, MIT licence): class queries
cross-attend to the pixel tokens (no self-attention), post-norm residual
blocks, and the mask logits are the last layer's head-averaged, pre-softmax
attention scores ``q·k / sqrt(d)``. Differences, all of them parameters that
never receive a gradient in ZegCLIP (so that DDP runs with
``find_unused_parameters=False``):

* the never-called ``self_attn`` of ``nn.TransformerDecoderLayer`` is not
  built;
* the last layer only computes its attention scores, so its value/output
  projections and FFN (whose outputs ZegCLIP discards) are not built;
* keys of softmax attention carry no bias (a key bias adds the same value
  to every key of a query, which softmax cancels; its gradient is 0).

With ``score_bias=True`` (ZegOT's main figure feeds the OT score matrix to
the decoder; how is not public, so this is our choice) each layer's
cross-attention logits of class query k over pixel m get ``g_l·S[b, k, m]``
added, with ``S`` the OT score path's logits and ``g_l`` a learnable gain per
layer, initialised to 1. The number of classes changes with the vocabulary,
so the score enters as an attention bias, not as channels.
"""
import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model.weight_init import constant_init, trunc_normal_init
from torch import Tensor


def _split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, L, C) -> (B, H, L, d)."""
    b, length, c = x.shape
    return x.reshape(b, length, num_heads, c // num_heads).transpose(1, 2)


class CrossAttentionLayer(nn.Module):
    """Queries attend to the pixel tokens; post-norm attention and FFN blocks.

    Args:
        embed_dims (int): C.
        num_heads (int): H, dividing C.
        ffn_ratio (float): FFN hidden width / C.
        dropout (float): Dropout on the attention weights, the residual
            branches and inside the FFN.
    """

    def __init__(self, embed_dims: int, num_heads: int, ffn_ratio: float,
                 dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dims, embed_dims)
        self.k_proj = nn.Linear(embed_dims, embed_dims, bias=False)
        self.v_proj = nn.Linear(embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.norm1 = nn.LayerNorm(embed_dims)
        hidden = int(embed_dims * ffn_ratio)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, embed_dims))
        self.norm2 = nn.LayerNorm(embed_dims)
        self.drop = nn.Dropout(dropout)

    def forward(self,
                query: Tensor,
                memory: Tensor,
                attn_bias: Optional[Tensor] = None) -> Tensor:
        """Args: query (B, K, C), memory (B, M, C), attn_bias (B, K, M),
        added to every head's attention logits, or None. Returns (B, K, C).
        """
        b, k, c = query.shape
        q = _split_heads(self.q_proj(query), self.num_heads)
        key = _split_heads(self.k_proj(memory), self.num_heads)
        v = _split_heads(self.v_proj(memory), self.num_heads)
        if attn_bias is not None:
            attn_bias = attn_bias.unsqueeze(1).to(q.dtype)  # B×1×K×M
        attn = F.scaled_dot_product_attention(
            q, key, v, attn_mask=attn_bias,
            dropout_p=self.dropout if self.training else 0.0)
        attn = attn.transpose(1, 2).reshape(b, k, c)
        query = self.norm1(query + self.drop(self.out_proj(attn)))
        return self.norm2(query + self.drop(self.ffn(query)))


class AttentionScores(nn.Module):
    """Head-averaged scaled dot products of queries and keys (the mask
    logits of the last decoder layer).

    Args:
        embed_dims (int): C.
        num_heads (int): H, dividing C.
    """

    def __init__(self, embed_dims: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embed_dims, embed_dims)
        self.k_proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, query: Tensor, memory: Tensor) -> Tensor:
        """Args: query (B, K, C), memory (B, M, C). Returns (B, K, M):
        ``mean_h q_h·k_h / sqrt(d)``."""
        q = _split_heads(self.q_proj(query), self.num_heads)
        key = _split_heads(self.k_proj(memory), self.num_heads)
        scale = 1.0 / math.sqrt(q.size(-1))
        return torch.einsum('bhkd,bhmd->bkm', q, key) * (scale /
                                                          self.num_heads)


class ZegOTTransformerDecoder(nn.Module):
    """``num_layers`` cross-attention layers, the last reduced to its
    attention scores, which are the mask logits.

    Args:
        embed_dims (int): C.
        num_layers (int): Number of layers, >= 1. Defaults to 3.
        num_heads (int): H, must divide C. Defaults to 8.
        ffn_ratio (float): FFN hidden width / C. Defaults to 4.
        dropout (float): Dropout probability in [0, 1). Defaults to 0.1.
        score_bias (bool): Take a per-class score map as an attention bias
            of the layers before the last, scaled by a learnable gain per
            layer (see the module docstring). Defaults to False.
    """

    def __init__(self,
                 embed_dims: int,
                 num_layers: int = 3,
                 num_heads: int = 8,
                 ffn_ratio: float = 4,
                 dropout: float = 0.1,
                 score_bias: bool = False):
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(
                num_layers, int) or num_layers < 1:
            raise ValueError('decoder.num_layers must be an integer >= 1, '
                             f'got {num_layers!r}')
        if isinstance(num_heads, bool) or not isinstance(
                num_heads, int) or num_heads < 1:
            raise ValueError('decoder.num_heads must be an integer >= 1, '
                             f'got {num_heads!r}')
        if embed_dims % num_heads != 0:
            raise ValueError(
                f'decoder.num_heads ({num_heads}) must divide the joint CLIP '
                f'width C = {embed_dims} (the decoder width); choose a '
                'divisor of C.')
        if not ffn_ratio > 0:
            raise ValueError(f'decoder.ffn_ratio must be > 0, got {ffn_ratio!r}')
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f'decoder.dropout must lie in [0, 1), got {dropout!r}')
        self.layers = nn.ModuleList(
            CrossAttentionLayer(embed_dims, num_heads, ffn_ratio, dropout)
            for _ in range(num_layers - 1))
        self.scores = AttentionScores(embed_dims, num_heads)
        self.score_gains = (nn.Parameter(torch.ones(num_layers - 1))
                            if score_bias else None)

    def init_weights(self) -> None:
        """ZegCLIP's init: Linear trunc-normal (std 0.02) with zero bias,
        LayerNorm weight 1 and bias 0; score gains 1."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_init(m, std=0.02, bias=0.0)
            elif isinstance(m, nn.LayerNorm):
                constant_init(m, val=1.0, bias=0.0)
        if self.score_gains is not None:
            nn.init.ones_(self.score_gains)

    def forward(self,
                query: Tensor,
                memory: Tensor,
                score: Optional[Tensor] = None) -> Tensor:
        """Decode class queries against pixel tokens.

        Args:
            query (Tensor): Class queries, (B, K, C).
            memory (Tensor): Pixel tokens, (B, M, C).
            score (Tensor, optional): Per-class scores of the pixels,
                (B, K, M); required with ``score_bias``, else None.

        Returns:
            Tensor: Mask logits, (B, K, M).
        """
        if (score is None) != (self.score_gains is None):
            raise ValueError(
                'The decoder was built with score_bias='
                f'{self.score_gains is not None} but called with '
                f'{"no" if score is None else "a"} score map.')
        for i, layer in enumerate(self.layers):
            bias = None if score is None else self.score_gains[i] * score
            query = layer(query, memory, bias)
        return self.scores(query, memory)
