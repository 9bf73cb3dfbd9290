# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Hide the labels of unseen classes for zero-shot training.

The model does not need this transform: ``ZegOTSegmentor`` maps dataset
labels to its training targets itself (see
:mod:`mmseg_zegot.models.segmentors.zegot_segmentor`), with the same rule
for unseen pixels (:func:`unseen_target`). The transform stays for pipelines
that hide the unseen labels before the model sees them.
"""
from collections.abc import Mapping
from typing import Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ..splits import ZeroShotSplit, make_split, resolve_split

#: Training settings: which labels of unseen classes the model gets.
SETTINGS = ('inductive', 'transductive', 'fully')


def unseen_target(setting: str, ignore_index: int,
                  hidden_index: int) -> Optional[int]:
    """The target of the pixels of unseen classes in ``setting``.

    The one rule shared by :class:`ZegOTZeroShotLabels` (``hidden_index``
    is its ``unlabeled_index``) and ``ZegOTSegmentor``'s training targets
    (``hidden_index`` is ``PSEUDO_LABEL``).

    Args:
        setting (str): One of :data:`SETTINGS`.
        ignore_index (int): Label of ignored pixels.
        hidden_index (int): Label of pixels whose class is hidden, to be
            pseudo-labelled.

    Returns:
        int | None: ``ignore_index`` (``'inductive'``: no loss),
        ``hidden_index`` (``'transductive'``: the location is kept, the
        class hidden) or None (``'fully'``: labels unchanged).
    """
    if setting not in SETTINGS:
        raise ValueError(f'`setting` must be one of {SETTINGS}, got '
                         f'{setting!r}.')
    return dict(inductive=ignore_index,
                transductive=hidden_index).get(setting)


@TRANSFORMS.register_module()
class ZegOTZeroShotLabels(BaseTransform):
    """Relabel the pixels of unseen classes for a zero-shot training setting.

    - ``'inductive'``: unseen pixels become ``ignore_index`` (no loss; the
      model never learns that they belong to a class).
    - ``'transductive'``: unseen pixels become ``unlabeled_index``: the
      pixels that transductive self-training may pseudo-label with an unseen
      class (ZegCLIP / OTSeg convention, also ZegOT's: the *location* of
      unseen pixels is kept, their class is hidden).
    - ``'fully'``: labels unchanged (the fully supervised upper bound).

    Labels stay in the index space of all classes; seen labels and
    ``ignore_index`` are untouched. For training pipelines only: put it right
    after ``LoadAnnotations``. Test pipelines must not use it, since
    evaluation needs the true labels of every class.

    Required Keys:

    - gt_seg_map

    Modified Keys:

    - gt_seg_map

    Args:
        setting (str): One of ``'inductive'``, ``'transductive'``,
            ``'fully'``. Defaults to ``'inductive'``.
        zero_shot_split (str | dict, optional): The split as the datasets
            and the model take it (a name of
            :data:`~mmseg_zegot.datasets.splits.SPLITS` or a dict, see
            :func:`~mmseg_zegot.datasets.splits.resolve_split`). Give either
            this or ``classes`` and ``unseen_classes``.
        classes (Sequence[str], optional): All class names, in label order.
        unseen_classes (Sequence[str], optional): Names of the unseen
            classes.
        unlabeled_index (int): Label of unseen pixels in the transductive
            setting. Must be neither a class index nor ``ignore_index``.
            Defaults to 254.
        ignore_index (int): Label of ignored pixels. Defaults to 255.
    """

    def __init__(self,
                 setting: str = 'inductive',
                 zero_shot_split: Union[str, Mapping, None] = None,
                 classes: Optional[Sequence[str]] = None,
                 unseen_classes: Optional[Sequence[str]] = None,
                 unlabeled_index: int = 254,
                 ignore_index: int = 255) -> None:
        self.target_index = unseen_target(setting, ignore_index,
                                          unlabeled_index)
        self.setting = setting
        self.split = self._build_split(zero_shot_split, classes,
                                       unseen_classes)
        num_classes = len(self.split.classes)
        for key, index in (('unlabeled_index', unlabeled_index),
                           ('ignore_index', ignore_index)):
            if not isinstance(index, int) or not num_classes <= index <= 255:
                raise ValueError(
                    f'`{key}` must be an int in [{num_classes}, 255] (not a '
                    f'class index of the {num_classes} classes, and within '
                    f'uint8 label maps), got {index!r}.')
        if unlabeled_index == ignore_index:
            raise ValueError('`unlabeled_index` must differ from '
                             f'`ignore_index` (both are {ignore_index}).')
        self.unlabeled_index = unlabeled_index
        self.ignore_index = ignore_index

    @staticmethod
    def _build_split(zero_shot_split: Union[str, Mapping, None],
                     classes: Optional[Sequence[str]],
                     unseen_classes: Optional[Sequence[str]]) -> ZeroShotSplit:
        if zero_shot_split is not None:
            if classes is not None or unseen_classes is not None:
                raise ValueError(
                    'Give either `zero_shot_split` or `classes` and '
                    '`unseen_classes`, not both.')
            return resolve_split(zero_shot_split)
        if classes is None or unseen_classes is None:
            raise ValueError(
                'ZegOTZeroShotLabels needs the split: `zero_shot_split` (a '
                'split name or dict, as the datasets take it) or both '
                '`classes` and `unseen_classes`.')
        return make_split(classes, unseen_classes)

    def transform(self, results: dict) -> dict:
        """Relabel the unseen pixels of ``results['gt_seg_map']``.

        Args:
            results (dict): With ``gt_seg_map`` of shape (H, W).

        Returns:
            dict: ``results`` with the relabelled ``gt_seg_map``.
        """
        if self.target_index is None:
            return results
        gt = results['gt_seg_map'].copy()
        gt[np.isin(gt, self.split.unseen_indices)] = self.target_index
        results['gt_seg_map'] = gt
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(setting={self.setting!r}, '
                f'zero_shot_split={self.split.name!r}, '
                f'unseen_classes={list(self.split.unseen)}, '
                f'unlabeled_index={self.unlabeled_index}, '
                f'ignore_index={self.ignore_index})')
