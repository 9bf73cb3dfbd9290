# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The MPOT score S* = sum_n M·N·T·S."""
import pytest
import torch
import torch.nn.functional as F

from mmseg_zegot.models.utils.mpot import mpot_score
from mmseg_zegot.models.utils.sinkhorn import sinkhorn

T, B, M, K, N, C = 2, 2, 6, 3, 4, 8


def inputs():
    gen = torch.Generator().manual_seed(0)
    feats = F.normalize(torch.randn(T, B, M, C, generator=gen), dim=-1)
    queries = F.normalize(torch.randn(B, K, N, C, generator=gen), dim=-1)
    return feats, queries


@pytest.mark.parametrize('grad_mode', ['detach', 'unrolled'])
def test_mpot_score_matches_its_formula(grad_mode):
    feats, queries = inputs()
    got = mpot_score(feats, queries, use_ot=True, epsilon=0.05, num_iters=50,
                     grad_mode=grad_mode)
    assert got.shape == (T, B, K, M) and got.dtype == torch.float32
    scores = torch.einsum('tbmc,bknc->tbkmn', feats, queries)
    plan = sinkhorn(1 - scores, epsilon=0.05, num_iters=50)
    torch.testing.assert_close(got, (M * N * plan * scores).sum(-1))
    # one tap at a time gives the same
    torch.testing.assert_close(
        mpot_score(feats[1], queries, use_ot=True, epsilon=0.05,
                   num_iters=50, grad_mode=grad_mode), got[1])
    uniform = mpot_score(feats, queries, use_ot=False, epsilon=0.05,
                         num_iters=50, grad_mode=grad_mode)
    torch.testing.assert_close(uniform, scores.sum(-1))
    assert not torch.allclose(got, uniform, atol=1e-3)
