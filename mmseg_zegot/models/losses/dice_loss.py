# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Per-class sigmoid dice loss on dense class logits (ZegCLIP / OTSeg style).

Shape shorthand: B images, K classes (columns of the current vocabulary),
H×W label resolution.
"""
from typing import Optional, Tuple, Union

import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from .utils import (
    check_flag,
    check_labels,
    counted_pixels,
    num_present_classes,
    per_class_loss,
    present_classes,
)


def _image_terms(logits: Tensor, positive: Tensor, counted: Tensor,
                 smooth: float) -> Tuple[Tensor, Tensor]:
    """One image's ``d_k`` for every class (K,), present or not, and their
    gradient (K, H, W), for :func:`per_class_loss`; ``counted`` (H, W) bool.

    With ``N = 2 * sum(p * t) + smooth`` and ``D = sum(p) + sum(t) +
    smooth``: ``d = 1 - N / D`` and ``dd/dp_i = N / D^2 - 2 * t_i / D``.
    """
    prob = logits.sigmoid().mul_(counted)
    numerator = 2 * (prob * positive).flatten(1).sum(1) + smooth
    denominator = (prob.flatten(1).sum(1) + positive.flatten(1).sum(1) +
                   smooth)
    slope = prob.sub_(prob.square())  # dp/dx, 0 where not counted
    ratio = (numerator / denominator.square())[:, None, None]
    step = (2 / denominator)[:, None, None]
    return 1 - numerator / denominator, slope.mul_(ratio - positive * step)


def dice_loss(pred: Tensor,
              target: Tensor,
              *,
              smooth: float = 1.0,
              ignore_index: int = 255,
              ignored_as_negative: bool = True,
              avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
    """Dice loss of the class maps present in each image.

    For image b and a class k present in it, with ``p = sigmoid(pred)`` and
    ``t = [target == k]`` over the pixels of the image::

        d_bk = 1 - (2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth)

    The loss is ``sum_{(b, k) present} d_bk / avg_factor``, by default over
    the number of (image, class) pairs present. This is ZegCLIP's
    ``SegPlusCriterion`` dice term (present classes only, +1 smoothing;
    ZegCLIP and OTSeg ``models/losses/criterion.py``, MIT licence): at an
    ``ignore_index`` pixel ``t = 0`` and ``p`` counts in ``sum(p)``, so
    probability put there is penalised. With ``ignored_as_negative=False``
    (an ablation) such pixels are left out of both sums. With no class
    present (e.g. all pixels ignored) the result is an exact 0 that keeps
    the graph.

    Args:
        pred (Tensor): Logits, (B, K, H, W).
        target (Tensor): Labels in ``[0, K)`` or ``ignore_index``, (B, H, W).
        smooth (float): Smoothing added to numerator and denominator.
        ignore_index (int): Label of pixels that are no class's positive.
        ignored_as_negative (bool): Count ``ignore_index`` pixels in
            ``sum(p)`` (the reference) or leave them out.
        avg_factor (float | Tensor, optional): The normaliser; default the
            number of (image, class) pairs present, at least 1.

    Returns:
        Tensor: The scalar loss.
    """
    check_labels(target, pred.size(1), ignore_index)
    counted = counted_pixels(target, ignore_index, ignored_as_negative)
    per_class = per_class_loss(_image_terms, pred, target, counted, smooth)
    present = present_classes(target, pred.size(1), ignore_index)
    if avg_factor is None:
        avg_factor = present.sum().clamp(min=1)
    return (per_class * present).sum() / avg_factor


@MODELS.register_module()
class ZegOTDiceLoss(nn.Module):
    """Module form of :func:`dice_loss`.

    The default normaliser is the number of (image, class) pairs present,
    averaged over distributed ranks (as in ZegCLIP / OTSeg).

    Args:
        smooth (float): Smoothing term. Defaults to 1.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Key of the loss in the loss dict; must start with
            ``loss_`` to be back-propagated. Defaults to ``'loss_dice'``.
        ignored_as_negative (bool): ``ignore_index`` pixels count in every
            class's ``sum(p)``, as in ZegCLIP / OTSeg (True), or are left out
            (False, an ablation). Defaults to True.
    """

    def __init__(self,
                 smooth: float = 1.0,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_dice',
                 ignored_as_negative: bool = True):
        super().__init__()
        if smooth < 0:
            raise ValueError(f'smooth must be >= 0, got {smooth!r}')
        check_flag(ignored_as_negative, 'ignored_as_negative')
        self.smooth = smooth
        self.ignored_as_negative = ignored_as_negative
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, pred: Tensor, target: Tensor,
                ignore_index: int = 255, **kwargs) -> Tensor:
        """Args: ``pred`` (B, K, H, W) logits, ``target`` (B, H, W) labels,
        ``ignore_index``. Pixel weights (``weight``) are not supported."""
        if kwargs.get('weight') is not None:
            raise ValueError('ZegOTDiceLoss does not support pixel weights')
        loss = dice_loss(
            pred,
            target,
            smooth=self.smooth,
            ignore_index=ignore_index,
            ignored_as_negative=self.ignored_as_negative,
            avg_factor=num_present_classes(target, pred.size(1),
                                           ignore_index))
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """Key of this loss in the loss dict."""
        return self._loss_name
