# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOT's global text alignment (ZegCLIP's relationship descriptor):
``q = normalize(W [g ⊙ t ; t])``.

Shape shorthand: B images, K classes, N prompts, C joint CLIP width.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model.weight_init import trunc_normal_init
from torch import Tensor, nn

#: Allowed values of ``text_alignment_init`` (config key
#: ``decode_head.text_alignment_init``).
TEXT_ALIGNMENT_INITS = ('trunc_normal', 'identity')


@torch.no_grad()
def init_text_alignment(linear: nn.Linear, mode: str) -> None:
    """Initialise the (2C -> C) alignment Linear ``W``.

    Args:
        linear (nn.Linear): The alignment layer.
        mode (str): ``'trunc_normal'`` (ZegCLIP: std 0.02, bias 0) or
            ``'identity'`` (``W = [0 | I]``, bias 0, so that ``q = t``).
    """
    if mode == 'trunc_normal':
        trunc_normal_init(linear, std=0.02, bias=0.0)
        return
    c = linear.out_features
    linear.weight.zero_()
    linear.weight[:, c:].copy_(torch.eye(c))
    linear.bias.zero_()


def align_text(global_embed: Tensor, text_embed: Tensor,
               linear: Optional[nn.Linear]) -> Tensor:
    """Per-image text queries ``q = normalize(W [g ⊙ t ; t])``, or
    ``q = normalize(t)`` without ``linear``.

    Args:
        global_embed (Tensor): g, (B, C).
        text_embed (Tensor): t, (K, N, C).
        linear (nn.Linear, optional): W, (2C -> C); None for ``q = t``.

    Returns:
        Tensor: q, (B, K, N, C), unit norm.
    """
    t = text_embed.unsqueeze(0).expand(global_embed.size(0), -1, -1, -1)
    if linear is None:
        return F.normalize(t, dim=-1)
    gt = global_embed[:, None, None, :] * t
    return F.normalize(linear(torch.cat([gt, t], dim=-1)), dim=-1)
