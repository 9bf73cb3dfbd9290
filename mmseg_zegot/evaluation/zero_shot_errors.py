# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Where a zero-shot segmentor's errors on unseen classes come from.

``ZeroShotIoUMetric`` says *how much* a model gets wrong; these counts say
*which kind* of wrong, from its class scores and the ground truth:

- the confusion matrix (rows: ground truth, columns: prediction);
- *seen bias*: the share of unseen-class pixels predicted as a seen class;
- *unseen hubs*: the share of seen-class pixels predicted as an unseen
  class (unseen columns, never trained in the inductive setting, taking
  over seen objects);
- *unseen discrimination* (ZSL): accuracy on unseen-class pixels when the
  argmax runs over the unseen classes only;
- *oracle presence*: IoUs when the argmax runs over the classes present in
  each image's ground truth only. The gap to the plain IoUs is the part of
  the error that comes from predicting classes the image does not show
  (image-level confusion); what is left is localisation inside the image.

All functions are pure and work on one image's (K, H, W) scores at a time;
counts add up over a dataset. :func:`alignment_report` looks at the text
side: how a learned text alignment, trained on the seen names only, places
each unseen class relative to the seen ones.
"""
from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .metrics.zero_shot_iou_metric import nanmean


def new_counts(num_classes: int) -> Dict[str, Tensor]:
    """Zeroed counts for :func:`accumulate`.

    Returns:
        dict[str, Tensor]: ``confusion`` and ``confusion_present``, (K, K)
        int64; ``unseen_pixels``, ``unseen_to_seen`` and ``unseen_zsl_hits``,
        0-dim int64.
    """
    square = torch.zeros(num_classes, num_classes, dtype=torch.long)
    return dict(confusion=square, confusion_present=square.clone(),
                unseen_pixels=torch.zeros((), dtype=torch.long),
                unseen_to_seen=torch.zeros((), dtype=torch.long),
                unseen_zsl_hits=torch.zeros((), dtype=torch.long))


def _confusion(gt: Tensor, pred: Tensor, num_classes: int) -> Tensor:
    return torch.bincount(gt * num_classes + pred,
                          minlength=num_classes**2).view(
                              num_classes, num_classes)


def accumulate(counts: Dict[str, Tensor], scores: Tensor, gt: Tensor,
               seen_mask: Tensor, ignore_index: int = 255) -> None:
    """Add one image to ``counts`` (in place).

    Args:
        counts (dict[str, Tensor]): From :func:`new_counts`.
        scores (Tensor): (K, H, W) class scores; argmax = prediction.
        gt (Tensor): (H, W) labels in ``[0, K)`` or ``ignore_index``.
        seen_mask (Tensor): (K,) bool, True for seen classes.
        ignore_index (int): Label of pixels left out. Default: 255.
    """
    num_classes = scores.size(0)
    valid = gt != ignore_index
    labels = gt[valid].long()
    flat = scores.flatten(1)[:, valid.flatten()]  # (K, P)
    seen_mask = seen_mask.to(scores.device)
    counts['confusion'] += _confusion(labels, flat.argmax(0),
                                      num_classes).cpu()
    present = torch.zeros(num_classes, dtype=torch.bool, device=gt.device)
    present[labels] = True
    masked = flat.masked_fill(~present[:, None], float('-inf'))
    counts['confusion_present'] += _confusion(labels, masked.argmax(0),
                                              num_classes).cpu()
    unseen_pixel = ~seen_mask[labels]
    if not unseen_pixel.any():
        return
    unseen_scores = flat[:, unseen_pixel]
    counts['unseen_pixels'] += int(unseen_pixel.sum())
    counts['unseen_to_seen'] += int(seen_mask[unseen_scores.argmax(0)].sum())
    zsl = unseen_scores.masked_fill(seen_mask[:, None], float('-inf'))
    counts['unseen_zsl_hits'] += int(
        (zsl.argmax(0) == labels[unseen_pixel]).sum())


def class_ious(confusion: Tensor) -> Tensor:
    """(K,) IoU per class from a (K, K) confusion matrix; NaN for classes
    absent from both ground truth and prediction."""
    confusion = confusion.double()
    hits = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - hits
    return hits / union


def summarize(counts: Dict[str, Tensor], class_names: Sequence[str],
              seen_mask: Tensor) -> dict:
    """Percentages from accumulated counts.

    Args:
        counts (dict[str, Tensor]): Accumulated by :func:`accumulate`.
        class_names (Sequence[str]): The K class names.
        seen_mask (Tensor): (K,) bool, True for seen classes.

    Returns:
        dict: ``mIoU.seen``/``mIoU.unseen`` plain and with oracle presence,
        ``unseen_to_seen`` and ``unseen_zsl_acc`` (% of unseen-class
        pixels), ``seen_to_unseen`` (% of seen-class pixels), per-class
        IoUs (``iou``, ``iou_present``) and the confusion matrix as row
        percentages (``confusion``).
    """
    seen_mask = seen_mask.cpu()
    out = {}
    for key, suffix in (('confusion', ''), ('confusion_present',
                                            '.present')):
        iou = class_ious(counts[key])
        out[f'mIoU.seen{suffix}'] = nanmean(iou[seen_mask].numpy()) * 100
        out[f'mIoU.unseen{suffix}'] = nanmean(iou[~seen_mask].numpy()) * 100
        out['iou' + suffix.replace('.', '_')] = {
            name: round(float(value) * 100, 2)
            for name, value in zip(class_names, iou)
        }
    pixels = int(counts['unseen_pixels'])
    out['unseen_to_seen'] = 100.0 * int(
        counts['unseen_to_seen']) / pixels if pixels else float('nan')
    out['unseen_zsl_acc'] = 100.0 * int(
        counts['unseen_zsl_hits']) / pixels if pixels else float('nan')
    rows = counts['confusion'].double()
    seen_rows = rows[seen_mask]
    out['seen_to_unseen'] = float(
        100.0 * seen_rows[:, ~seen_mask].sum() /
        seen_rows.sum()) if seen_rows.sum() else float('nan')
    rows = rows / rows.sum(1, keepdim=True).clamp(min=1) * 100
    out['confusion'] = [[round(float(v), 1) for v in row] for row in rows]
    return out


def outside_span(vectors: Tensor, basis: Tensor) -> Tensor:
    """Length of the part of each vector outside the span of ``basis``.

    Args:
        vectors (Tensor): (..., U, C).
        basis (Tensor): (..., S, C), same leading dimensions.

    Returns:
        Tensor: (..., U), the norm of each vector's least-squares residual.
    """
    a = basis.transpose(-1, -2).double()  # (..., C, S)
    y = vectors.transpose(-1, -2).double()  # (..., C, U)
    residual = y - a @ torch.linalg.lstsq(a, y).solution
    return residual.norm(dim=-2).to(vectors.dtype)



def new_alignment_counts(num_classes: int) -> Dict[str, Tensor]:
    """Zeroed counts for :func:`accumulate_alignment`.

    Returns:
        dict[str, Tensor]: ``cos`` (K, K) float64, the sum over images of
        the cosines between classes; ``outside_span``, 0-dim float64, the
        sum over images and unseen classes of :func:`outside_span` against
        the seen classes; ``images``, 0-dim int64.
    """
    return dict(cos=torch.zeros(num_classes, num_classes, dtype=torch.double),
                outside_span=torch.zeros((), dtype=torch.double),
                images=torch.zeros((), dtype=torch.long))


def accumulate_alignment(counts: Dict[str, Tensor], queries: Tensor,
                         seen_mask: Tensor) -> None:
    """Add aligned class embeddings of B images to ``counts`` (in place).

    Args:
        counts (dict[str, Tensor]): From :func:`new_alignment_counts`.
        queries (Tensor): (B, K, C) aligned embeddings (normalised here).
        seen_mask (Tensor): (K,) bool, True for seen classes.
    """
    queries = F.normalize(queries.detach().double().cpu(), dim=-1)
    seen_mask = seen_mask.cpu()
    counts['cos'] += torch.einsum('bkc,bjc->kj', queries, queries)
    counts['outside_span'] += outside_span(queries[:, ~seen_mask],
                                           queries[:, seen_mask]).sum()
    counts['images'] += queries.size(0)


def alignment_report(counts: Dict[str, Tensor], text: Tensor,
                     class_names: Sequence[str], seen_mask: Tensor) -> dict:
    """Where the text alignment puts the unseen classes.

    Args:
        counts (dict[str, Tensor]): Accumulated by
            :func:`accumulate_alignment` over a dataset.
        text (Tensor): (K, C) the class embeddings the alignment starts
            from (normalised here).
        class_names (Sequence[str]): The K class names.
        seen_mask (Tensor): (K,) bool, True for seen classes; at least one
            seen and one unseen class.

    Returns:
        dict: ``nearest_seen``: for each unseen class, its nearest seen
        class after the alignment (by mean cosine over the images), with
        the cosine after (``cos``) and before (``cos_text``);
        ``outside_seen_span``: the mean length of the part of the unit
        unseen embeddings outside the span of the seen ones, before
        (``text``) and after (``queries``) the alignment.
    """
    seen_mask = seen_mask.cpu()
    text = F.normalize(text.detach().double().cpu(), dim=-1)
    cos_text = text @ text.T
    cos = counts['cos'] / counts['images']
    seen = seen_mask.nonzero().flatten()
    unseen = (~seen_mask).nonzero().flatten()
    nearest = {}
    for k in unseen.tolist():
        j = int(seen[cos[k, seen].argmax()])
        nearest[class_names[k]] = dict(
            seen=class_names[j], cos=round(float(cos[k, j]), 4),
            cos_text=round(float(cos_text[k, j]), 4))
    span_text = outside_span(text[unseen], text[seen]).mean()
    span_queries = counts['outside_span'] / (counts['images'] * len(unseen))
    return dict(nearest_seen=nearest,
                outside_seen_span=dict(text=round(float(span_text), 4),
                                       queries=round(float(span_queries),
                                                     4)))
