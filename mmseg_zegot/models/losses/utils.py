# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Target helpers shared by ZegOT's per-class (sigmoid) mask losses.

Shape shorthand: B images, K classes (columns of the current vocabulary),
H×W label resolution.
"""
import torch
from mmengine.dist import all_reduce
from torch import Tensor


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
