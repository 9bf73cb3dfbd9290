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


def focal_term(x, positive, alpha, gamma):
    """RetinaNet's focal loss of one logit ``x`` against a binary target."""
    p = 1 / (1 + math.exp(-x))
    if positive:
        return -alpha * (1 - p)**gamma * math.log(p)
    return -(1 - alpha) * p**gamma * math.log(1 - p)


def reference_focal(logits, labels, alpha=0.25, gamma=2.0, negative=True):
    """Straight loops over images, classes and pixels.

    ``negative=True`` is ZegCLIP / OTSeg ``SegPlusCriterion``: the target
    mask of class c is 1 where the label is c and 0 everywhere else (label
    255 too, ``_get_target_mask_binary_cross_entropy``), the loss is averaged
    over all H·W pixels (``loss.mean(1)``), summed over (image, class) and
    divided by ``num_masks``, the number of (image, class) pairs whose class
    occurs in the image. ``negative=False``: 255 pixels are skipped.
    """
    b, k = logits.shape[:2]
    total, num_masks = 0.0, 0
    for i in range(b):
        pixels = list(zip(logits[i].flatten(1).t().tolist(),
                          labels[i].flatten().tolist()))
        counted = [(x, y) for x, y in pixels if negative or y != IGNORE]
        num_masks += len({y for _, y in pixels if y != IGNORE})
        for c in range(k):
            acc = sum(focal_term(x[c], y == c, alpha, gamma)
                      for x, y in counted)
            total += acc / max(len(counted), 1)
    return total / max(num_masks, 1)


def reference_dice(logits, labels, smooth=1.0, negative=True):
    """Loops over images and the classes present in them (ZegCLIP's
    ``dice_loss`` on ``prepare_targets`` masks: ``targets == cls`` for each
    class in ``targets.unique()`` but 255, sigmoid over every pixel).
    ``negative=False``: 255 pixels are skipped."""
    total, num_masks = 0.0, 0
    for i in range(logits.shape[0]):
        for c in sorted(set(labels[i].flatten().tolist()) - {IGNORE}):
            num_masks += 1
            inter = p_sum = t_sum = 0.0
            for x, y in zip(logits[i, c].flatten().tolist(),
                            labels[i].flatten().tolist()):
                if not negative and y == IGNORE:
                    continue
                p = 1 / (1 + math.exp(-x))
                inter += p * (y == c)
                p_sum += p
                t_sum += y == c
            total += 1 - (2 * inter + smooth) / (p_sum + t_sum + smooth)
    return total / max(num_masks, 1)


@pytest.mark.parametrize('negative', [True, False])
def test_focal_matches_reference_with_ignore_and_normalisation(negative):
    logits, labels = random_batch()
    expected = reference_focal(logits, labels, negative=negative)
    got = sigmoid_focal_loss(logits, labels, ignore_index=IGNORE,
                             ignored_as_negative=negative)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(expected, rel=1e-10)
    # The default normaliser: (image, class) pairs present (class 0 is
    # absent from image 1).
    num_present = sum(
        int((labels[i] == c).any()) for i in range(2) for c in range(4))
    assert 1 < num_present < 8
    explicit = sigmoid_focal_loss(
        logits, labels, ignore_index=IGNORE, ignored_as_negative=negative,
        avg_factor=1.0)
    assert explicit.item() == pytest.approx(expected * num_present, rel=1e-10)


@pytest.mark.parametrize('negative', [True, False])
def test_focal_alpha_gamma_and_module_weight(negative):
    logits, labels = random_batch(seed=3)
    expected = reference_focal(logits, labels, alpha=0.4, gamma=1.5,
                               negative=negative)
    module = ZegOTFocalLoss(alpha=0.4, gamma=1.5, loss_weight=100.0,
                            loss_name='loss_focal_ot',
                            ignored_as_negative=negative)
    assert module.loss_name == 'loss_focal_ot'
    got = module(logits, labels, ignore_index=IGNORE)
    assert got.item() == pytest.approx(100.0 * expected, rel=1e-6)


@pytest.mark.parametrize('loss', [sigmoid_focal_loss, dice_loss])
def test_ignored_pixels_count_only_as_negatives(loss):
    """Raising the logits at 255 pixels raises the reference loss and leaves
    the ablation's unchanged."""
    logits, labels = random_batch(seed=1)
    changed = logits.clone()
    changed[(labels == IGNORE).unsqueeze(1).expand_as(logits)] = 50.0
    for negative in (True, False):
        base = loss(logits, labels, ignore_index=IGNORE,
                    ignored_as_negative=negative).item()
        high = loss(changed, labels, ignore_index=IGNORE,
                    ignored_as_negative=negative).item()
        if negative:
            assert high > base + 0.01
        else:
            assert high == pytest.approx(base, rel=1e-12)


@pytest.mark.parametrize('negative', [True, False])
def test_dice_matches_reference(negative):
    logits, labels = random_batch(seed=2)
    expected = reference_dice(logits, labels, negative=negative)
    got = dice_loss(logits, labels, ignore_index=IGNORE,
                    ignored_as_negative=negative)
    assert got.item() == pytest.approx(expected, rel=1e-10)
    module = ZegOTDiceLoss(loss_weight=2.0, ignored_as_negative=negative)
    assert module.loss_name == 'loss_dice'
    assert module(logits, labels, ignore_index=IGNORE).item() == pytest.approx(
        2.0 * expected, rel=1e-6)


def test_module_defaults_are_the_reference():
    logits, labels = random_batch(seed=4)
    assert ZegOTFocalLoss()(logits, labels).item() == pytest.approx(
        reference_focal(logits, labels), rel=1e-10)
    assert ZegOTDiceLoss()(logits, labels).item() == pytest.approx(
        reference_dice(logits, labels), rel=1e-10)


def test_dice_perfect_prediction_is_near_zero():
    labels = torch.tensor([[[0, 1], [1, IGNORE]]])
    logits = torch.full((1, 2, 2, 2), -30.0, dtype=torch.float64)
    logits[0, 0][labels[0] == 0] = 30.0
    logits[0, 1][labels[0] == 1] = 30.0
    assert dice_loss(logits, labels).item() == pytest.approx(0.0, abs=1e-9)
    logits[0, :, 1, 1] = 30.0  # a 255 pixel: left out by the ablation only
    assert dice_loss(logits, labels, ignored_as_negative=False).item() == \
        pytest.approx(0.0, abs=1e-9)
    # class 0: 1 - (2·1 + 1) / (2 + 1 + 1); class 1: 1 - (2·2 + 1) / (3 + 2 + 1)
    assert dice_loss(logits, labels).item() == pytest.approx(
        (1 / 4 + 1 / 6) / 2, rel=1e-9)


def test_all_ignored_reference_pushes_every_class_down():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    labels = torch.full((2, 4, 4), IGNORE)
    focal = ZegOTFocalLoss()(logits, labels, ignore_index=IGNORE)
    focal.backward()
    assert focal.item() > 0
    assert (logits.grad > 0).all()
    dice = ZegOTDiceLoss()(logits, labels, ignore_index=IGNORE)
    assert dice.item() == 0.0  # no class present: no dice term
    assert dice.requires_grad


@pytest.mark.parametrize('loss', [
    ZegOTFocalLoss(ignored_as_negative=False),
    ZegOTDiceLoss(ignored_as_negative=False)
])
def test_all_ignored_gives_zero_with_graph_when_left_out(loss):
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
    for loss in (ZegOTFocalLoss, ZegOTDiceLoss):
        with pytest.raises(ValueError, match='ignored_as_negative'):
            loss(ignored_as_negative='no')
    with pytest.raises(ValueError, match='weights'):
        ZegOTFocalLoss()(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2).long(),
                         weight=torch.ones(1, 2, 2))


@pytest.mark.parametrize('negative', [True, False])
@pytest.mark.parametrize('loss', [
    lambda x, y, negative: sigmoid_focal_loss(
        x, y, ignore_index=IGNORE, ignored_as_negative=negative),
    lambda x, y, negative: sigmoid_focal_loss(
        x, y, alpha=0.4, gamma=1.5, ignore_index=IGNORE,
        ignored_as_negative=negative, avg_factor=torch.tensor(3.0)),
    lambda x, y, negative: dice_loss(
        x, y, smooth=0.5, ignore_index=IGNORE, ignored_as_negative=negative),
], ids=['focal', 'focal-alpha-gamma', 'dice'])
def test_gradients_match_finite_differences(loss, negative):
    """The gradients are worked out in the forward pass (nothing of size
    B×K×H×W but the gradient is kept): central differences in float64 check
    them, with ignored pixels, an absent class and logits up to ±8."""
    logits, labels = random_batch(b=2, k=3, h=4, w=5, seed=5)
    logits = (logits * 2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: loss(x, labels, negative),
                                    (logits, ))


@pytest.mark.parametrize('loss', [sigmoid_focal_loss, dice_loss])
def test_large_logits_give_finite_losses_and_gradients(loss):
    logits = torch.tensor([[[[200.0, 200.0]], [[-200.0, -200.0]]]],
                          requires_grad=True)  # (1, 2, 1, 2)
    labels = torch.tensor([[[1, IGNORE]]])
    value = loss(logits, labels)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    if loss is sigmoid_focal_loss:
        # Confidently wrong at pixel 0 (class 0 high, class 1 low): the
        # focal gradients point back towards the label, at full strength.
        assert logits.grad[0, 0, 0, 0] > 0 and logits.grad[0, 1, 0, 0] < 0


def test_no_gradient_buffer_without_grad():
    logits, labels = random_batch()
    with torch.no_grad():
        value = sigmoid_focal_loss(logits.requires_grad_(True), labels)
    assert not value.requires_grad
