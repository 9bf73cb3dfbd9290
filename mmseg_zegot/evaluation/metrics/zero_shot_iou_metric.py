# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""mIoU over the seen and the unseen classes, and their harmonic mean."""
import math
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from prettytable import PrettyTable

from mmseg_zegot.datasets.splits import (
    ZeroShotSplit,
    make_split,
    split_of_metainfo,
)


def nanmean(values: np.ndarray) -> float:
    """Mean of the non-NaN entries (in float64); NaN, without mmseg's
    warning, if there is none."""
    values = np.atleast_1d(np.asarray(values, np.float64))
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def harmonic_iou(seen: float, unseen: float) -> float:
    """hIoU = 2·S·U / (S + U); 0 when S + U = 0, NaN if S or U is NaN."""
    if math.isnan(seen) or math.isnan(unseen):
        return math.nan
    total = seen + unseen
    return 2 * seen * unseen / total if total > 0 else 0.0


def _percent(value: float) -> float:
    """A ratio as a percentage rounded like mmseg (2 decimals), a float."""
    return float(np.round(value * 100, 2))


@METRICS.register_module()
class ZeroShotIoUMetric(IoUMetric):
    """mmseg's :class:`~mmseg.evaluation.IoUMetric` with the generalised
    zero-shot summary: mIoU over the seen classes, over the unseen classes,
    and their harmonic mean hIoU (Xian et al., CVPR 2019; as reported by
    ZegOT, Kim et al., 2023, arXiv:2301.12171).

    Predictions and labels are in the index space of all classes (the test
    vocabulary is always every class). The split is read from
    ``dataset_meta`` (``unseen_classes``, ``seen_classes``), which the
    datasets of :mod:`mmseg_zegot.datasets.zero_shot` provide.

    :meth:`compute_metrics` returns plain floats in percent, rounded to two
    decimals like mmseg: ``aAcc``, ``mIoU``, ``mAcc`` (and ``mDice`` /
    ``mFscore`` ... when asked for in ``iou_metrics``) over all classes,
    ``mIoU.seen``, ``mIoU.unseen`` and ``hIoU = 2·S·U / (S + U)`` (0 when
    ``S + U = 0``). A class that is neither in the ground truth nor
    predicted has IoU NaN (0 / 0) and, as in mmseg's ``nanmean``, is left
    out of every mean; a class predicted but absent from the ground truth
    has IoU 0 and counts. A mean over no class (e.g. ``mIoU.unseen`` of a
    fully supervised split) is NaN, and so is hIoU then. With
    ``nan_to_num`` set, NaN IoUs are replaced first and do count. For
    ``save_best='hIoU'`` in ``CheckpointHook`` give ``rule='greater'``
    (mmengine cannot infer the rule from the name).

    The per-class table logged through ``print_log`` is mmseg's with a
    ``Split`` column (``seen`` / ``unseen``). :meth:`compute_metrics` is
    adapted from mmseg 1.2.2's ``IoUMetric.compute_metrics`` (Apache-2.0);
    :meth:`process` counts as mmseg's, after refusing label values outside
    the classes and the ignore index; the collection of results across
    ranks is mmseg's.

    Args:
        unseen_classes (Sequence[str], optional): Unseen class names,
            overriding ``dataset_meta``. Defaults to None.
        **kwargs: :class:`~mmseg.evaluation.IoUMetric`'s arguments
            (``ignore_index``, ``iou_metrics`` (must include ``'mIoU'``),
            ``nan_to_num``, ``beta``, ``collect_device``, ``output_dir``,
            ``format_only``, ``prefix``).
    """

    def __init__(self,
                 unseen_classes: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        metrics = [self.metrics] if isinstance(self.metrics,
                                               str) else self.metrics
        if 'mIoU' not in metrics:
            raise ValueError("`iou_metrics` must include 'mIoU' for "
                             f'ZeroShotIoUMetric, got {self.metrics!r}.')
        self.unseen_classes = (None if unseen_classes is None else
                               tuple(unseen_classes))
        self.split: Optional[ZeroShotSplit] = None

    @property
    def dataset_meta(self) -> Optional[dict]:
        """Optional[dict]: Meta info of the dataset; setting it resolves the
        split (unless ``format_only``), so a missing split fails before
        inference rather than after it."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: Optional[dict]) -> None:
        self._dataset_meta = dataset_meta
        self.split = (None if dataset_meta is None or self.format_only else
                      self._build_split(dataset_meta))

    def _build_split(self, dataset_meta: dict) -> ZeroShotSplit:
        if self.unseen_classes is not None:
            return make_split(dataset_meta['classes'], self.unseen_classes)
        split = split_of_metainfo(dataset_meta)
        if split is None:
            raise ValueError(
                'ZeroShotIoUMetric needs a seen/unseen split, but the '
                "dataset's metainfo has no `unseen_classes`. Evaluate on a "
                'dataset built with `zero_shot_split` (e.g. '
                "dict(type='ZegOTPascalVOC20Dataset', zero_shot_split='voc'))"
                ' or set `unseen_classes` on the metric.')
        return split

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Check each label map's values, then count as mmseg does.

        mmseg's ``intersect_and_union`` leaves a label value outside
        ``[0, K)`` out of the label areas but counts the prediction at that
        pixel, so such values lower the IoUs without any message (a single
        validation file with background 50 moved the toy benchmark's unseen
        mIoU from 6.70 to 3.97). The start-up check reads only the first
        label files; here every one is checked.

        Raises:
            ValueError: Naming the label map, its out-of-range values and
                the fix.
        """
        if not self.format_only:
            for data_sample in data_samples:
                self._check_label_values(data_sample)
        super().process(data_batch, data_samples)

    def _check_label_values(self, data_sample: dict) -> None:
        """Raise if the sample's label map holds a value outside
        ``[0, K)`` other than the ignore index (see :meth:`process`)."""
        label = data_sample['gt_sem_seg']['data']
        num_classes = len(self.dataset_meta['classes'])
        bad = ((label < 0) | (label >= num_classes)) & (
            label != self.ignore_index)
        if not bad.any():
            return
        values = label[bad].unique().tolist()
        path = data_sample.get('seg_map_path') or 'a label map (no path)'
        raise ValueError(
            f'ZeroShotIoUMetric: the label map {path} holds the values '
            f'{values[:10]}, outside the class indices [0, {num_classes}) '
            f'and the ignore index {self.ignore_index}: they would make '
            'every prediction on those pixels count as wrong (a lower mIoU, '
            'silently). Correct the label file (tools/check_dataset.py '
            'CONFIG names every such file), or check the dataset\'s '
            '`reduce_zero_label` and `metainfo.classes`.')

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Compute the metrics from the processed results.

        Args:
            results (list): Per image, the (K,) tensors ``(intersection,
                union, predicted area, label area)`` of :meth:`process`.

        Returns:
            dict[str, float]: See the class docstring; empty with
            ``format_only``.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        if self.format_only:
            logger.info(f'results are saved to {osp.dirname(self.output_dir)}')
            return OrderedDict()
        total_areas = [sum(areas) for areas in zip(*results)]
        ret_metrics = self.total_area_to_metrics(*total_areas, self.metrics,
                                                 self.nan_to_num, self.beta)

        metrics = OrderedDict(
            (key if key == 'aAcc' else 'm' + key, _percent(nanmean(value)))
            for key, value in ret_metrics.items())
        iou = ret_metrics['IoU']
        seen = nanmean(iou[list(self.split.seen_indices)])
        unseen = nanmean(iou[list(self.split.unseen_indices)])
        metrics['mIoU.seen'] = _percent(seen)
        metrics['mIoU.unseen'] = _percent(unseen)
        metrics['hIoU'] = _percent(harmonic_iou(seen, unseen))

        ret_metrics.pop('aAcc', None)
        class_table = PrettyTable()
        class_table.add_column('Class', list(self.split.classes))
        class_table.add_column(
            'Split', ['seen' if s else 'unseen' for s in self.split.seen_mask])
        for key, value in ret_metrics.items():
            class_table.add_column(key, np.round(value * 100, 2))
        print_log('per class results:', logger)
        print_log('\n' + class_table.get_string(), logger=logger)
        print_log(
            f'zero-shot split {self.split.name!r}: '
            f'mIoU.seen {metrics["mIoU.seen"]} '
            f'({len(self.split.seen)} classes), mIoU.unseen '
            f'{metrics["mIoU.unseen"]} ({len(self.split.unseen)} classes), '
            f'hIoU {metrics["hIoU"]}',
            logger=logger)
        return metrics
