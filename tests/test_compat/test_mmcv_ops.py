# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The pure-PyTorch mmcv.ops stand-in against straightforward references."""
import math
import subprocess
import sys

import pytest
import torch

from mmseg_zegot.compat import mmcv_ops
from mmseg_zegot.compat.mmcv_ops import point_sample, sigmoid_focal_loss


def bilinear_reference(feature, x, y):
    """Bilinear sample of one (C, H, W) map at pixel-space (x, y), zero
    outside, with align_corners=False pixel centres, in float64 loops."""
    channels, height, width = feature.shape
    px, py = x * width - 0.5, y * height - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = torch.zeros(channels, dtype=torch.float64)
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - abs(px - xi)) * (1 - abs(py - yi))
            if 0 <= xi < width and 0 <= yi < height:
                out += weight * feature[:, yi, xi].double()
    return out


def test_point_sample_matches_bilinear_reference():
    torch.manual_seed(0)
    feature = torch.randn(2, 3, 5, 7)
    points = torch.rand(2, 6, 2) * 1.2 - 0.1  # some points fall outside
    out = point_sample(feature, points)
    assert out.shape == (2, 3, 6)
    for n in range(2):
        for p in range(6):
            x, y = points[n, p].tolist()
            ref = bilinear_reference(feature[n], x, y)
            torch.testing.assert_close(out[n, :, p].double(), ref,
                                       atol=1e-6, rtol=1e-6)


def test_point_sample_grid_points_shape():
    feature = torch.randn(1, 4, 8, 8)
    grid = torch.rand(1, 3, 5, 2)
    out = point_sample(feature, grid)
    assert out.shape == (1, 4, 3, 5)
    torch.testing.assert_close(out[0, :, 1, 2],
                               point_sample(feature, grid[:, 1, 2:3])[0, :, 0])


def focal_reference(logits, target, gamma, alpha, weight):
    """mmcv's CUDA kernel formula, element by element, in float64."""
    n, c = logits.shape
    out = torch.zeros(n, c, dtype=torch.float64)
    for i in range(n):
        for j in range(c):
            p = 1 / (1 + math.exp(-float(logits[i, j])))
            if int(target[i]) == j:
                value = -alpha * (1 - p)**gamma * math.log(p)
            else:
                value = -(1 - alpha) * p**gamma * math.log(1 - p)
            if weight is not None and int(target[i]) < c:
                value *= float(weight[target[i]])
            out[i, j] = value
    return out


@pytest.mark.parametrize('reduction', ['none', 'mean', 'sum'])
@pytest.mark.parametrize('with_weight', [False, True])
def test_sigmoid_focal_loss_matches_reference(reduction, with_weight):
    torch.manual_seed(1)
    logits = torch.randn(7, 4, dtype=torch.float64) * 3
    target = torch.tensor([0, 1, 2, 3, 4, 1, 4])  # 4 == C: no positive
    weight = torch.rand(4, dtype=torch.float64) if with_weight else None
    ref = focal_reference(logits, target, 2.0, 0.25, weight)
    ref = {'none': ref, 'mean': ref.sum() / 7, 'sum': ref.sum()}[reduction]
    out = sigmoid_focal_loss(logits, target, 2.0, 0.25, weight, reduction)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-10)


def test_sigmoid_focal_loss_gradient_matches_reference_autograd():
    torch.manual_seed(2)
    logits = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 2, 1, 3, 2])
    sigmoid_focal_loss(logits, target, 2.0, 0.25, None, 'mean').backward()
    ours = logits.grad.clone()
    logits.grad = None
    p = logits.sigmoid()
    one_hot = torch.nn.functional.one_hot(target, 4)[:, :3].double()
    ref = (-0.25 * one_hot * (1 - p)**2 * p.log() -
           0.75 * (1 - one_hot) * p**2 * (1 - p).log()).sum() / 5
    ref.backward()
    torch.testing.assert_close(ours, logits.grad)


def test_sigmoid_focal_loss_extreme_logits_are_finite():
    logits = torch.tensor([[1e4, -1e4], [-1e4, 1e4]])
    loss = sigmoid_focal_loss(logits, torch.tensor([1, 0]), 2.0, 0.25, None,
                              'sum')
    assert torch.isfinite(loss)


def test_sigmoid_focal_loss_rejects_unknown_reduction():
    with pytest.raises(ValueError, match='reduction'):
        sigmoid_focal_loss(torch.zeros(1, 2), torch.zeros(1).long(),
                           reduction='avg')


def test_stand_in_is_active_on_mmcv_lite_and_answers_like_mmcv():
    import mmcv
    module = sys.modules['mmcv.ops']
    assert mmcv.ops is module
    assert module.__mmseg_zegot_fallback__
    assert module.point_sample is point_sample
    with pytest.raises(ModuleNotFoundError, match='compiled ops'):
        from mmcv.ops import CrissCrossAttention  # noqa: F401
    with pytest.raises(AttributeError):
        module.__file__  # noqa: B018  (inspect probes dunders)


def test_mmseg_focal_loss_calls_stand_in():
    """mmseg's ``sigmoid_focal_loss`` (its CUDA path) imports the op from
    ``mmcv.ops`` at import time; on mmcv-lite it gets ours."""
    from mmseg.models.losses import focal_loss
    assert focal_loss._sigmoid_focal_loss is sigmoid_focal_loss
    logits = torch.randn(6, 3, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 3, 1, 0])
    one_hot = torch.nn.functional.one_hot(target, 4)[:, :3]
    loss = focal_loss.sigmoid_focal_loss(logits, target, one_hot, alpha=0.25,
                                         reduction='sum')
    ref = focal_reference(logits, target, 2.0, 0.25, None).sum()
    torch.testing.assert_close(loss, ref)


def test_stand_in_never_shadows_compiled_mmcv():
    """With compiled ops reported present, nothing is installed."""
    code = (
        'import sys, mmseg_zegot.compat.mmcv_ops as m\n'
        "sys.modules.pop('mmcv.ops', None)\n"
        'm.compiled_ops_available = lambda: True\n'
        'assert m.install_mmcv_ops_fallback() is False\n'
        "assert 'mmcv.ops' not in sys.modules\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr


def test_install_is_idempotent():
    assert mmcv_ops.install_mmcv_ops_fallback() is True
    assert mmcv_ops.install_mmcv_ops_fallback() is True
