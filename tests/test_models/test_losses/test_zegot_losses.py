# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Per-class sigmoid focal and dice losses against float64 references."""
import math

import pytest
import torch

from mmseg_zegot.models.losses import (
    ZegOTDiceLoss,
    ZegOTFocalLoss,
    dice_loss,
    sigmoid_focal_loss,
)

IGNORE = 255


def random_batch(b=2, k=4, h=5, w=6, seed=0):
    """float64 logits (B, K, H, W) and labels (B, H, W) with ignored pixels;
    image 1 lacks class 0 so presence differs between images."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, k, h, w, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, k, (b, h, w), generator=gen)
    labels[1][labels[1] == 0] = 1
    labels[torch.rand(b, h, w, generator=gen) < 0.3] = IGNORE
    return logits, labels


def reference_focal(logits, labels, alpha=0.25, gamma=2.0):
    """Straight loops over images, classes and pixels."""
    b, k = logits.shape[:2]
    total, present = 0.0, 0
    for i in range(b):
        valid = labels[i] != IGNORE
        n_valid = int(valid.sum())
        for c in range(k):
            t = (labels[i] == c) & valid
            present += int(t.any())
            acc = 0.0
            for x, is_pos, ok in zip(logits[i, c].flatten().tolist(),
                                     t.flatten().tolist(),
                                     valid.flatten().tolist()):
                if not ok:
                    continue
                p = 1 / (1 + math.exp(-x))
                if is_pos:
                    acc += -alpha * (1 - p)**gamma * math.log(p)
                else:
                    acc += -(1 - alpha) * p**gamma * math.log(1 - p)
            total += acc / max(n_valid, 1)
    return total / max(present, 1)


def reference_dice(logits, labels, smooth=1.0):
    b, k = logits.shape[:2]
    total, present = 0.0, 0
    for i in range(b):
        valid = labels[i] != IGNORE
        for c in range(k):
            t = ((labels[i] == c) & valid).double()
            if not t.any():
                continue
            present += 1
            p = torch.sigmoid(logits[i, c]) * valid
            inter = float((p * t).sum())
            denom = float(p.sum() + t.sum())
            total += 1 - (2 * inter + smooth) / (denom + smooth)
    return total / max(present, 1)


def test_focal_matches_reference_with_ignore_and_normalisation():
    logits, labels = random_batch()
    expected = reference_focal(logits, labels)
    got = sigmoid_focal_loss(logits, labels, ignore_index=IGNORE)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(expected, rel=1e-10)
    # The default normaliser: (image, class) pairs present (class 0 is
    # absent from image 1).
    num_present = sum(
        int((labels[i] == c).any()) for i in range(2) for c in range(4))
    assert 1 < num_present < 8
    explicit = sigmoid_focal_loss(
        logits, labels, ignore_index=IGNORE, avg_factor=1.0)
    assert explicit.item() == pytest.approx(expected * num_present, rel=1e-10)


def test_focal_alpha_gamma_and_module_weight():
    logits, labels = random_batch(seed=3)
    expected = reference_focal(logits, labels, alpha=0.4, gamma=1.5)
    module = ZegOTFocalLoss(alpha=0.4, gamma=1.5, loss_weight=100.0,
                            loss_name='loss_focal_ot')
    assert module.loss_name == 'loss_focal_ot'
    got = module(logits, labels, ignore_index=IGNORE)
    assert got.item() == pytest.approx(100.0 * expected, rel=1e-6)


def test_focal_ignored_pixels_do_not_count():
    logits, labels = random_batch(seed=1)
    base = sigmoid_focal_loss(logits, labels, ignore_index=IGNORE)
    changed = logits.clone()
    changed[(labels == IGNORE).unsqueeze(1).expand_as(logits)] = 50.0
    assert sigmoid_focal_loss(
        changed, labels, ignore_index=IGNORE).item() == pytest.approx(
            base.item(), rel=1e-12)


def test_dice_matches_reference():
    logits, labels = random_batch(seed=2)
    expected = reference_dice(logits, labels)
    got = dice_loss(logits, labels, ignore_index=IGNORE)
    assert got.item() == pytest.approx(expected, rel=1e-10)
    module = ZegOTDiceLoss(loss_weight=2.0)
    assert module.loss_name == 'loss_dice'
    assert module(logits, labels, ignore_index=IGNORE).item() == pytest.approx(
        2.0 * expected, rel=1e-6)


def test_dice_perfect_prediction_is_near_zero():
    labels = torch.tensor([[[0, 1], [1, IGNORE]]])
    logits = torch.full((1, 2, 2, 2), -30.0, dtype=torch.float64)
    logits[0, 0][labels[0] == 0] = 30.0
    logits[0, 1][labels[0] == 1] = 30.0
    logits[0, :, 1, 1] = 30.0  # ignored pixel: does not count
    assert dice_loss(logits, labels).item() == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize('loss', [ZegOTFocalLoss(), ZegOTDiceLoss()])
def test_all_ignored_gives_zero_with_graph(loss):
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    labels = torch.full((2, 4, 4), IGNORE)
    value = loss(logits, labels, ignore_index=IGNORE)
    assert value.item() == 0.0
    assert value.requires_grad
    value.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_out_of_range_label_raises():
    logits = torch.randn(1, 3, 2, 2)
    labels = torch.tensor([[[0, 1], [2, 3]]])
    with pytest.raises(ValueError, match=r'\[3\]'):
        sigmoid_focal_loss(logits, labels)
    with pytest.raises(ValueError, match=r'\[3\]'):
        dice_loss(logits, labels)


def test_module_validation():
    with pytest.raises(ValueError, match='alpha'):
        ZegOTFocalLoss(alpha=1.5)
    with pytest.raises(ValueError, match='gamma'):
        ZegOTFocalLoss(gamma=-1)
    with pytest.raises(ValueError, match='smooth'):
        ZegOTDiceLoss(smooth=-1)
    with pytest.raises(ValueError, match='weights'):
        ZegOTFocalLoss()(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2).long(),
                         weight=torch.ones(1, 2, 2))
