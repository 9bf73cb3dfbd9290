# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The global text alignment q = normalize(W [g ⊙ t ; t])."""
import torch
import torch.nn.functional as F
from torch import nn

from mmseg_zegot.models.utils.text_alignment import align_text, init_text_alignment


def test_align_text_formula_and_shapes():
    torch.manual_seed(0)
    linear = nn.Linear(8, 4)
    g = F.normalize(torch.randn(2, 4), dim=-1)
    t = F.normalize(torch.randn(3, 5, 4), dim=-1)
    q = align_text(g, t, linear)
    assert q.shape == (2, 3, 5, 4)
    b, k, n = 1, 2, 3
    expected = F.normalize(linear(torch.cat([g[b] * t[k, n], t[k, n]])),
                           dim=-1)
    torch.testing.assert_close(q[b, k, n], expected)
    torch.testing.assert_close(q.norm(dim=-1), torch.ones(2, 3, 5))
    # without the layer: the prompts, per image
    torch.testing.assert_close(align_text(g, t, None),
                               t.unsqueeze(0).expand(2, -1, -1, -1))


def test_init_text_alignment_modes():
    linear = nn.Linear(8, 4)
    init_text_alignment(linear, 'identity')
    assert torch.equal(linear.weight, torch.cat([torch.zeros(4, 4),
                                                 torch.eye(4)], dim=1))
    assert torch.count_nonzero(linear.bias) == 0
    torch.manual_seed(0)
    big = nn.Linear(512, 256)
    init_text_alignment(big, 'trunc_normal')
    assert 0.019 < big.weight.std() < 0.021
    assert torch.count_nonzero(big.bias) == 0
