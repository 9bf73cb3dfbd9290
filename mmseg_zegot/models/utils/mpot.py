# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOT's multi-prompt optimal transport (MPOT) score.

Shape shorthand: T tapped layers, B images, K classes, N prompts, M pixel
tokens, C joint CLIP width.
"""
import torch
from torch import Tensor

from .sinkhorn import sinkhorn


def mpot_score(feats: Tensor, queries: Tensor, *, use_ot: bool,
               epsilon: float, num_iters: int, grad_mode: str) -> Tensor:
    """MPOT: ``S* = sum_n M·N·T·S`` with ``S = <f, q>``.

    Sinkhorn solves one (M, N) problem per (tap, image, class), in float32,
    all in one call. The cost ``1 - S`` of unit vectors spans at most 2 per
    pixel, which lets the solver use its kernel form (see
    :func:`~.sinkhorn.sinkhorn`'s ``cost_spread``). With ``use_ot=False``
    the plan is uniform (``1/(M·N)``), i.e. ``S* = sum_n S``.

    Args:
        feats (Tensor): f, (B, M, C), or (T, B, M, C) for T taps; unit norm.
        queries (Tensor): q, (B, K, N, C); unit norm.
        use_ot (bool): False for the uniform plan (ablation).
        epsilon (float): Entropic regularisation of Sinkhorn.
        num_iters (int): Sinkhorn iterations.
        grad_mode (str): Sinkhorn's ``grad_mode`` (``'detach'`` or
            ``'unrolled'``).

    Returns:
        Tensor: S*, (B, K, M) (or (T, B, K, M)), float32.
    """
    scores = torch.einsum('...bmc,bknc->...bkmn', feats, queries).float()
    if not use_ot:
        return scores.sum(dim=-1)
    m, n = scores.shape[-2:]
    plan = sinkhorn(1.0 - scores, epsilon=epsilon, num_iters=num_iters,
                    grad_mode=grad_mode, cost_spread=2.0)
    return (plan * scores).sum(dim=-1) * (m * n)
