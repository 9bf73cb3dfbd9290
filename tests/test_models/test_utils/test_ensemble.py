# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The ensemble of the OT score path and the decoder."""
import math

import pytest
import torch

from mmseg_zegot.models.utils.ensemble import ensemble_probabilities, log_prob_to_logit


def test_log_prob_to_logit_is_stable():
    x = torch.tensor([-1e-30, -1e-6, -0.3, -math.log(2), -2.0, -50.0],
                     dtype=torch.float64)
    p = x.exp()
    torch.testing.assert_close(log_prob_to_logit(x[1:]),
                               torch.log(p[1:] / (1 - p[1:])))
    y = torch.tensor([0.0, -1e-30, -0.5, -100.0], requires_grad=True)
    out = log_prob_to_logit(y)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(y.grad).all()
    assert out[0] > 80


@pytest.mark.parametrize('space', ['logits', 'probabilities'])
def test_ensemble_probabilities(space):
    score = torch.tensor([[6.0, 0.6, -5.0]])
    decoder = torch.tensor([[-3.0, 0.6, -5.0]])
    prob = ensemble_probabilities(score, decoder, 0.5, space)
    if space == 'logits':  # OTSeg: σ(0.5 decoder + 0.5 score)
        expected = torch.tensor([[1.5, 0.6, -5.0]]).sigmoid()
    else:
        expected = 0.5 * score.sigmoid() + 0.5 * decoder.sigmoid()
    torch.testing.assert_close(prob, expected)
    # no decoder, or weight 0: the score path alone
    for out in (ensemble_probabilities(score, None, 0.5, space),
                ensemble_probabilities(score, decoder, 0.0, space)):
        assert torch.equal(out, score.sigmoid())
    assert torch.equal(ensemble_probabilities(score, decoder, 1.0, 'logits'),
                       decoder.sigmoid())
