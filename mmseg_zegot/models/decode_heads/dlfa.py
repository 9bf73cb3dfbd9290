# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOT's Deep Local Feature Alignment (DLFA) projections.

Shape shorthand: T taps, B images, D ViT width, C joint CLIP width, h×w
patch grid, M = h·w pixel tokens.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ZegOTDLFA(nn.ModuleList):
    """One projection ``P_l = LayerNorm(D) -> Linear(D->C, no bias)`` per
    tapped ViT layer, mapping its patch tokens ``z_l`` into CLIP's joint
    space: ``f_l = normalize(P_l(z_l))`` (ZegOT, Kim, Oh and Ye, arXiv
    2301.12171, §3.2). Initialised from CLIP's own output projection by
    :meth:`init_from_clip` (MaskCLIP's frozen dense features).

    Args:
        in_channels (int): D.
        channels (int): C.
        num_taps (int): T.
        frozen (bool): Keep the CLIP initialisation (no gradients).
    """

    def __init__(self, in_channels: int, channels: int, num_taps: int,
                 frozen: bool) -> None:
        super().__init__(
            nn.Sequential(
                nn.LayerNorm(in_channels),
                nn.Linear(in_channels, channels, bias=False))
            for _ in range(num_taps))
        if frozen:
            self.requires_grad_(False)

    def forward(self, taps: Sequence[Tensor]) -> Tensor:
        """Project the taps.

        Args:
            taps (Sequence[Tensor]): T maps, each (B, D, h, w).

        Returns:
            Tensor: f, (T, B, M, C), unit norm.
        """
        return torch.stack([
            F.normalize(proj(tap.flatten(2).transpose(1, 2)), dim=-1)
            for proj, tap in zip(self, taps)
        ])

    @torch.no_grad()
    def init_from_clip(self, ln_weight: Tensor, ln_bias: Tensor,
                       proj: Tensor) -> None:
        """Set every projection to CLIP's output projection, so that
        ``P_l(z) = ln_post(z) @ proj``.

        Args:
            ln_weight (Tensor): ``ln_post`` weight, (D,).
            ln_bias (Tensor): ``ln_post`` bias, (D,).
            proj (Tensor): CLIP's ``proj``, (D, C).

        Raises:
            ValueError: If the shapes are not those of the projections.
        """
        norm, linear = self[0]
        expected = (norm.weight.shape, norm.bias.shape,
                    linear.weight.t().shape)
        got = (ln_weight.shape, ln_bias.shape, proj.shape)
        if got != expected:
            raise ValueError(
                f'CLIP output projection shapes {[tuple(s) for s in got]} do '
                'not match the DLFA projections '
                f'{[tuple(s) for s in expected]} (in_channels D, channels C)')
        for norm, linear in self:
            norm.weight.copy_(ln_weight)
            norm.bias.copy_(ln_bias)
            linear.weight.copy_(proj.t())
