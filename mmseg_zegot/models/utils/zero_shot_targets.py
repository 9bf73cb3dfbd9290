# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Dataset labels -> training targets of zero-shot training.

:class:`~mmseg_zegot.models.segmentors.ZegOTSegmentor` is the one place
that applies these functions (its module docstring says why); the head
receives the final targets.

Shape shorthand: B images, H×W label size, K_all dataset classes, K columns
of the training vocabulary.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from mmseg_zegot.datasets.transforms.zero_shot_labels import (
    SETTINGS,
    unseen_target,
)

__all__ = [
    'PSEUDO_LABEL', 'SETTINGS', 'assign_pseudo_labels', 'map_labels',
    'training_label_map'
]

#: Target of a pixel that gets a pseudo-label (transductive), before
#: :func:`assign_pseudo_labels` replaces it.
PSEUDO_LABEL = -1


def training_label_map(seen_mask: Tensor, setting: str,
                       ignore_index: int) -> Tuple[Tensor, Optional[Tensor]]:
    """The lookup from dataset classes to training columns.

    * ``'inductive'``: the training vocabulary is the seen classes, in
      dataset order; unseen classes map to ``ignore_index``.
    * ``'transductive'``: all classes are columns; unseen classes map to
      :data:`PSEUDO_LABEL`, which may take an unseen column.
    * ``'fully'`` (or no unseen class): the identity.

    Unseen classes follow ``ZegOTZeroShotLabels``' rule
    (:func:`~mmseg_zegot.datasets.transforms.zero_shot_labels.unseen_target`).

    Args:
        seen_mask (Tensor): (K_all,) bool, True for the seen classes.
        setting (str): One of :data:`SETTINGS`.
        ignore_index (int): Target of ignored pixels.

    Returns:
        tuple[Tensor, Tensor | None]: The (K_all,) int64 lookup, and the
        (K,) bool columns a pseudo-label may take (the unseen classes), or
        None when no class is pseudo-labelled.
    """
    seen_mask = seen_mask.bool()
    target = unseen_target(setting, ignore_index, PSEUDO_LABEL)
    if setting == 'inductive':
        columns = seen_mask.long().cumsum(0) - 1
    else:
        columns = torch.arange(seen_mask.numel())
    if target is None or seen_mask.all():
        return columns, None
    pseudo = ~seen_mask if target == PSEUDO_LABEL else None
    return columns.masked_fill(~seen_mask, target), pseudo


def map_labels(gt: Tensor, label_map: Tensor, *, ignore_index: int,
               unlabeled_index: Optional[int]) -> Tensor:
    """Dataset labels -> training columns through ``label_map``.

    Args:
        gt (Tensor): Dataset labels, (B, H, W), any integer dtype.
        label_map (Tensor): (K_all,) int64 from :func:`training_label_map`.
        ignore_index (int): Label (and target) of ignored pixels.
        unlabeled_index (int, optional): Label of pixels whose class
            ``ZegOTZeroShotLabels`` hid in the transductive setting; they
            become :data:`PSEUDO_LABEL`. None: no such label.

    Returns:
        Tensor: (B, H, W) int64 in ``[0, K)``, ``ignore_index`` or
        :data:`PSEUDO_LABEL`.

    Raises:
        ValueError: If a label is neither ``ignore_index``,
            ``unlabeled_index`` nor a dataset class.
    """
    gt = gt.long()
    ignore = gt == ignore_index
    unlabeled = (torch.zeros_like(ignore) if unlabeled_index is None else
                 gt == unlabeled_index)
    label_map = label_map.to(gt.device)
    size = label_map.numel()
    bad = ~ignore & ~unlabeled & ((gt < 0) | (gt >= size))
    if bad.any():
        raise ValueError(
            f'Ground truth holds labels {gt[bad].unique().tolist()} that are '
            f'neither ignore_index ({ignore_index}), unlabeled_index '
            f'({unlabeled_index}) nor one of the {size} classes the model was '
            "set up for. Check the dataset classes against the model's "
            'class_names.')
    labels = label_map[gt.clamp(0, size - 1)]
    labels = labels.masked_fill(unlabeled, PSEUDO_LABEL)
    return labels.masked_fill(ignore, ignore_index)


@torch.no_grad()
def assign_pseudo_labels(labels: Tensor, prob: Optional[Tensor],
                         allowed: Optional[Tensor],
                         ignore_index: int) -> Tensor:
    """Replace :data:`PSEUDO_LABEL` targets by the model's own guess: the
    argmax of ``prob`` over the ``allowed`` columns (OTSeg's self-training).
    Without ``allowed`` such pixels are ignored.

    Args:
        labels (Tensor): (B, H, W) from :func:`map_labels`.
        prob (Tensor, optional): (B, K, H, W) class probabilities; only
            read with ``allowed``.
        allowed (Tensor, optional): (K,) bool, the columns a pseudo-label
            may take.
        ignore_index (int): Target of ignored pixels.

    Returns:
        Tensor: (B, H, W) targets in ``[0, K)`` or ``ignore_index``.
    """
    pseudo = labels == PSEUDO_LABEL
    if allowed is None:
        return labels.masked_fill(pseudo, ignore_index)
    allowed = allowed.to(prob.device)
    prob = prob.masked_fill(~allowed[None, :, None, None], -1.0)
    return torch.where(pseudo, prob.argmax(dim=1), labels)
