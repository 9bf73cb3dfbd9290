# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Target helpers shared by ZegOT's per-class (sigmoid) mask losses.

Shape shorthand: B images, K classes (columns of the current vocabulary),
H×W label resolution.
"""
from typing import Callable

import torch
from mmengine.dist import all_reduce
from torch import Tensor
from torch.autograd.function import once_differentiable


def check_flag(value, key: str) -> None:
    """Raise ValueError naming ``key`` unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f'{key} must be True or False, got {value!r}')


def check_labels(target: Tensor, num_classes: int, ignore_index: int) -> None:
    """Raise ValueError unless every label is in ``[0, K)`` or
    ``ignore_index``.

    Args:
        target (Tensor): Labels, (B, H, W), integer.
        num_classes (int): K.
        ignore_index (int): Label of pixels that are no class's positive.
    """
    valid = target != ignore_index
    outside = valid & ((target < 0) | (target >= num_classes))
    if outside.any():
        raise ValueError(
            f'Labels {target[outside].unique().tolist()} are neither in '
            f'[0, {num_classes}) nor ignore_index ({ignore_index})')


def counted_pixels(target: Tensor, ignore_index: int,
                   ignored_as_negative: bool) -> Tensor:
    """The pixels a per-class loss runs over.

    Args:
        target (Tensor): Labels in ``[0, K)`` or ``ignore_index``, (B, H, W).
        ignore_index (int): Label of pixels that are no class's positive.
        ignored_as_negative (bool): True: ``ignore_index`` pixels count, as
            negatives of every class (ZegCLIP / OTSeg); False: they take no
            part in the loss.

    Returns:
        Tensor: (B, H, W) bool.
    """
    if ignored_as_negative:
        return torch.ones_like(target, dtype=torch.bool)
    return target != ignore_index


def class_masks(target: Tensor, num_classes: int) -> Tensor:
    """One binary mask per class of one image's label map.

    Args:
        target (Tensor): Labels, (H, W); labels outside ``[0, K)`` (such as
            ``ignore_index``) are in no mask.
        num_classes (int): K.

    Returns:
        Tensor: (K, H, W) bool.
    """
    classes = torch.arange(num_classes, device=target.device)
    return target.unsqueeze(0) == classes[:, None, None]


def present_classes(target: Tensor, num_classes: int,
                    ignore_index: int) -> Tensor:
    """Which classes occur in each image.

    Args:
        target (Tensor): Labels in ``[0, K)`` or ``ignore_index``, (B, H, W).
        num_classes (int): K.
        ignore_index (int): Label of pixels to leave out.

    Returns:
        Tensor: (B, K) bool.
    """
    labels = torch.where(target != ignore_index, target.long(), num_classes)
    present = labels.new_zeros(
        labels.size(0), num_classes + 1, dtype=torch.bool)
    present.scatter_(1, labels.flatten(1), True)
    return present[:, :num_classes]


def num_present_classes(target: Tensor, num_classes: int,
                        ignore_index: int) -> Tensor:
    """The loss normaliser of ZegCLIP / OTSeg (MaskFormer's ``num_masks``):
    the number of (image, class) pairs present in the batch, averaged over
    distributed ranks and clamped to at least 1.

    Args:
        target (Tensor): Labels in ``[0, K)`` or ``ignore_index``, (B, H, W).
        num_classes (int): K.
        ignore_index (int): Label of pixels to leave out.

    Returns:
        Tensor: A float32 scalar (no gradient).
    """
    num = present_classes(target, num_classes, ignore_index).sum().float()
    all_reduce(num, op='mean')  # a no-op outside distributed training
    return num.clamp(min=1.0)


class _ImageByImage(torch.autograd.Function):
    """Per-class sums of an elementwise loss, one image at a time, with the
    gradient worked out in the forward pass.

    ``terms(logits, positive, pixels, *args)`` gets one image's logits
    (K, H, W), its class masks (K, H, W) bool and its ``pixels`` entry, and
    returns that image's per-class values (K,) and their gradient by the
    logits (K, H, W). Nothing of size (B, K, H, W) is kept but the
    gradient: autograd through the elementwise formulas would keep about
    ten such tensors (COCO-Stuff: 156 classes at 512² are 160 MB per image
    and tensor).
    """

    @staticmethod
    def forward(ctx, terms: Callable, pred: Tensor, target: Tensor,
                pixels: Tensor, *args) -> Tensor:
        per_class = pred.new_empty(pred.shape[:2])
        grad = torch.empty_like(pred) if ctx.needs_input_grad[1] else None
        for index in range(pred.size(0)):
            positive = class_masks(target[index], pred.size(1))
            value, slope = terms(pred[index], positive, pixels[index], *args)
            per_class[index] = value
            if grad is not None:
                grad[index] = slope
        ctx.num_args = len(args)
        ctx.save_for_backward(grad)
        return per_class

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        grad, = ctx.saved_tensors
        return (None, grad * grad_output[:, :, None, None], None, None,
                *[None] * ctx.num_args)


def per_class_loss(terms: Callable, pred: Tensor, target: Tensor,
                   pixels: Tensor, *args) -> Tensor:
    """``terms`` summed per (image, class) (see :class:`_ImageByImage`).

    Args:
        terms (Callable): ``(logits, positive, pixels[b], *args) ->
            (values (K,), gradient (K, H, W))``.
        pred (Tensor): Logits, (B, K, H, W).
        target (Tensor): Labels in ``[0, K)`` or ``ignore_index``, (B, H, W).
        pixels (Tensor): A per-pixel weight or mask, (B, H, W).
        *args: Passed on to ``terms``.

    Returns:
        Tensor: (B, K), differentiable in ``pred``.
    """
    return _ImageByImage.apply(terms, pred, target, pixels, *args)
