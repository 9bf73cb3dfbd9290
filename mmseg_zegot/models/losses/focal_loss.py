# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Per-class sigmoid focal loss on dense class logits (ZegCLIP / OTSeg style).

Shape shorthand: B images, K classes (columns of the current vocabulary),
H×W label resolution.
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
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


def focal_terms(logits: Tensor, positive: Tensor, alpha: float,
                gamma: float) -> Tuple[Tensor, Tensor]:
    """The focal loss of each element and its derivative by the logit.

    With ``z = x`` at a positive and ``-x`` at a negative, ``p_t =
    sigmoid(z)``, ``q = 1 - p_t`` and ``a = alpha_t``::

        l = -a * q^gamma * log(p_t)
        dl/dx = ±a * q^gamma * (gamma * p_t * log(p_t) - q)

    (the sign of ``z``), computed from ``log(p_t)`` (``logsigmoid``), stable
    for logits of any size.

    Args:
        logits (Tensor): Logits, any shape, floating point.
        positive (Tensor): The binary targets, ``logits``' shape, bool.
        alpha (float): Weight of the positive term.
        gamma (float): Focusing exponent.

    Returns:
        tuple[Tensor, Tensor]: ``l`` and ``dl/dx``, ``logits``' shape.
    """
    sign = positive.to(logits.dtype).mul_(2).sub_(1)  # ±1
    z = logits * sign
    q = torch.sigmoid(-z)
    log_p = F.logsigmoid(z)
    del z
    weight = sign.mul(alpha - 0.5).add_(0.5).mul_(q.pow(gamma))  # a * q^g
    loss = weight * log_p
    loss.neg_()
    slope = log_p.mul_(gamma).mul_(q.neg().add_(1)).sub_(q).mul_(weight)
    return loss, slope.mul_(sign)


def _image_terms(logits: Tensor, positive: Tensor, pixel_weight: Tensor,
                 alpha: float, gamma: float) -> Tuple[Tensor, Tensor]:
    """One image's ``Σ_pixels weight * l`` per class (K,) and its gradient
    (K, H, W), for :func:`per_class_loss`; ``pixel_weight`` is (H, W)."""
    loss, slope = focal_terms(logits, positive, alpha, gamma)
    return (loss.mul_(pixel_weight).flatten(1).sum(1),
            slope.mul_(pixel_weight))


def sigmoid_focal_loss(pred: Tensor,
                       target: Tensor,
                       *,
                       alpha: float = 0.25,
                       gamma: float = 2.0,
                       ignore_index: int = 255,
                       ignored_as_negative: bool = True,
                       avg_factor: Optional[Union[float, Tensor]] = None
                       ) -> Tensor:
    """Sigmoid focal loss of every class map against its binary target.

    Every class column is an independent binary problem (RetinaNet's focal
    loss, Lin et al. 2017). For image b, class k and valid pixel x, with
    ``p = sigmoid(pred)`` and ``t = [target == k]``::

        l = -alpha_t * (1 - p_t)^gamma * log(p_t)
        p_t = p if t else 1 - p,   alpha_t = alpha if t else 1 - alpha

    ``l`` is averaged over the pixels of image b, summed over all (b, k),
    and divided by ``avg_factor``, by default the number of (image, class)
    pairs present in the batch. This is ZegCLIP's ``SegPlusCriterion`` focal
    term (``loss.mean(1).sum() / num_masks``; ZegCLIP and OTSeg
    ``models/losses/criterion.py``, MIT licence): an ``ignore_index`` pixel
    is a negative of every class (``t = 0``), so in the inductive setting
    background, crop padding and unseen-class pixels teach every seen class
    "not here". With ``ignored_as_negative=False`` (an ablation) such pixels
    are left out of the mean instead; an image without other pixels then
    contributes 0, so an all-ignored batch gives an exact 0 that keeps the
    graph.

    Args:
        pred (Tensor): Logits, (B, K, H, W).
        target (Tensor): Labels in ``[0, K)`` or ``ignore_index``, (B, H, W).
        alpha (float): Weight of the positive term.
        gamma (float): Focusing exponent.
        ignore_index (int): Label of pixels that are no class's positive.
        ignored_as_negative (bool): Count ``ignore_index`` pixels as
            negatives of every class (the reference) or leave them out.
        avg_factor (float | Tensor, optional): The normaliser; default the
            number of (image, class) pairs present, at least 1.

    Returns:
        Tensor: The scalar loss.
    """
    check_labels(target, pred.size(1), ignore_index)
    counted = counted_pixels(target, ignore_index, ignored_as_negative)
    num_counted = counted.flatten(1).sum(1).clamp(min=1)  # (B,)
    weight = counted.to(pred.dtype) / num_counted[:, None, None]
    per_class = per_class_loss(_image_terms, pred, target, weight, alpha,
                               gamma)
    if avg_factor is None:
        avg_factor = present_classes(target, pred.size(1),
                                     ignore_index).sum().clamp(min=1)
    return per_class.sum() / avg_factor


@MODELS.register_module()
class ZegOTFocalLoss(nn.Module):
    """Module form of :func:`sigmoid_focal_loss`.

    The default normaliser is the number of (image, class) pairs present,
    averaged over distributed ranks (as in ZegCLIP / OTSeg).

    Args:
        alpha (float): Weight of the positive term. Defaults to 0.25.
        gamma (float): Focusing exponent. Defaults to 2.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Key of the loss in the loss dict; must start with
            ``loss_`` to be back-propagated. Defaults to ``'loss_focal'``.
        ignored_as_negative (bool): ``ignore_index`` pixels are negatives of
            every class, as in ZegCLIP / OTSeg (True), or left out of the
            loss (False, an ablation). Defaults to True.
    """

    def __init__(self,
                 alpha: float = 0.25,
                 gamma: float = 2.0,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_focal',
                 ignored_as_negative: bool = True):
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'alpha must lie in [0, 1], got {alpha!r}')
        if gamma < 0:
            raise ValueError(f'gamma must be >= 0, got {gamma!r}')
        check_flag(ignored_as_negative, 'ignored_as_negative')
        self.alpha = alpha
        self.gamma = gamma
        self.ignored_as_negative = ignored_as_negative
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, pred: Tensor, target: Tensor,
                ignore_index: int = 255, **kwargs) -> Tensor:
        """Args: ``pred`` (B, K, H, W) logits, ``target`` (B, H, W) labels,
        ``ignore_index``. Other keyword arguments of mmseg's loss call
        (``weight``) are not supported and must be None."""
        if kwargs.get('weight') is not None:
            raise ValueError('ZegOTFocalLoss does not support pixel weights')
        loss = sigmoid_focal_loss(
            pred,
            target,
            alpha=self.alpha,
            gamma=self.gamma,
            ignore_index=ignore_index,
            ignored_as_negative=self.ignored_as_negative,
            avg_factor=num_present_classes(target, pred.size(1),
                                           ignore_index))
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """Key of this loss in the loss dict."""
        return self._loss_name
