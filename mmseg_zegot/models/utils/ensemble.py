# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The ensemble of ZegOT's two class-score paths.

The OT score path gives ``log P`` (the deep aggregation of the refined OT
scores), the decoder gives logits; inference and transductive pseudo-labels
mix the two. Every function is element-wise: any shape, typically
(B, K, H, W) for B images and K classes.
"""
import math
from typing import Optional

import torch
from torch import Tensor

#: Allowed values of ``ensemble`` (config key ``decode_head.ensemble``):
#: where the two paths are mixed.
ENSEMBLE_SPACES = ('logits', 'probabilities')


def log_prob_to_logit(log_prob: Tensor) -> Tensor:
    """``logit(P) = log P - log(1 - P)`` from ``log P``, without forming P.

    ``log(1 - P)`` is ``log1mexp(log P)`` (Mächler 2012): ``log(-expm1(x))``
    for ``x > -log 2``, ``log1p(-exp(x))`` otherwise. Each branch is
    evaluated on its own clamped input so neither produces inf/NaN values or
    gradients. ``log P`` is clamped below 0 (P = 1 exactly would be an
    infinite logit), bounding the logit by about 87 in float32.

    Args:
        log_prob (Tensor): ``log P``, any shape, values <= 0.

    Returns:
        Tensor: ``logit(P)``, same shape.
    """
    log_half = -math.log(2.0)
    x = log_prob.clamp(max=-torch.finfo(log_prob.dtype).tiny)
    near_one = torch.log(-torch.expm1(x.clamp(min=log_half)))
    far = torch.log1p(-torch.exp(x.clamp(max=log_half)))
    return x - torch.where(x > log_half, near_one, far)


def ensemble_probabilities(score_logits: Tensor,
                           decoder_logits: Optional[Tensor], weight: float,
                           space: str) -> Tensor:
    """Class probabilities from the OT score path and the decoder.

    ``space='logits'`` is OTSeg's ensemble (``decode_seg.py``, "Inference
    with ensemble", and its transductive pseudo-labels): one sigmoid of the
    mixed logits, ``p = σ(λ·decoder + (1 - λ)·S)``, with ``S = logit(P)``.
    ``space='probabilities'`` averages the two paths' probabilities,
    ``p = λ·σ(decoder) + (1 - λ)·σ(S)`` (an ablation).

    Args:
        score_logits (Tensor): ``logit(P)`` of the OT score path, any shape.
        decoder_logits (Tensor, optional): The decoder's logits, same shape;
            None for a decoder-free head.
        weight (float): λ in [0, 1]; 0 (or no decoder) gives ``σ(S)``.
        space (str): One of :data:`ENSEMBLE_SPACES`.

    Returns:
        Tensor: Probabilities, same shape, a new tensor.
    """
    if decoder_logits is None or weight == 0:
        return score_logits.sigmoid()
    if space == 'logits':
        return torch.lerp(score_logits, decoder_logits, weight).sigmoid_()
    return torch.lerp(score_logits.sigmoid(), decoder_logits.sigmoid(),
                      weight)
