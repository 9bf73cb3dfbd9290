# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Start-up checks: the datasets, the model and the metrics of a run agree,
and a sample of the label files holds what the model expects.

A config names its classes in several places: every dataset (``classes``
and its zero-shot split in the metainfo), the model (``zero_shot_split`` or
``class_names`` / ``seen_classes``; a stock mmseg head's ``num_classes``),
``ZegOTZeroShotLabels`` transforms and ``ZeroShotIoUMetric``. Each of them
checks itself when it is built; :class:`ZegOTStartupCheckHook` checks that
they agree with each other, before the first training or test iteration,
and reads the first label files of every dataset to check their values.
A disagreement raises a ValueError naming the config keys and the fix.
"""
import logging
from typing import Optional, Sequence, Tuple

import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import HOOKS
from torch import nn
from torch.utils.data import Dataset

from mmseg_zegot.datasets.checker import leaf_datasets
from mmseg_zegot.datasets.class_names import names_diff
from mmseg_zegot.datasets.transforms import ZegOTZeroShotLabels
from mmseg_zegot.evaluation.metrics import ZeroShotIoUMetric
from mmseg_zegot.models.segmentors import ZegOTSegmentor

#: The label of ignored pixels when the model does not name one.
DEFAULT_IGNORE_INDEX = 255
_MODEL_KEYS = ('`model.zero_shot_split` (or `model.class_names` and '
               '`model.seen_classes`)')


def unwrap_model(model: nn.Module) -> nn.Module:
    """The segmentor inside DDP and test-time-augmentation wrappers."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def model_unseen(model: ZegOTSegmentor, training: bool) -> Tuple[str, ...]:
    """The classes the model treats as unseen: of its training classes
    (``class_names`` minus ``seen_classes``) or of its test vocabulary (the
    columns outside the head's seen mask)."""
    if training:
        return tuple(name for name in model.class_names
                     if name not in model.seen_classes)
    seen_mask = model.decode_head.seen_mask.tolist()
    return tuple(name for name, seen in zip(model.test_classes, seen_mask)
                 if not seen)


def check_dataset(model: nn.Module, key: str, dataset: Dataset,
                  training: bool) -> None:
    """Check one dataset (not a wrapper) against the model.

    With a :class:`ZegOTSegmentor`: the dataset's classes are the model's
    (``class_names`` for training, the test vocabulary otherwise; same names,
    same order, as labels index them); for training (outside the
    ``'fully'`` setting) the dataset's unseen classes are the model's. With
    another model: its ``decode_head.num_classes`` is the number of dataset
    classes. Then every ``ZegOTZeroShotLabels`` of the pipeline is checked.

    Args:
        model (nn.Module): The unwrapped segmentor.
        key (str): The dataset's config key, for messages.
        dataset (Dataset): The dataset.
        training (bool): Whether it is a training dataset.

    Raises:
        ValueError: On a disagreement, naming the keys and the fix.
    """
    metainfo = getattr(dataset, 'metainfo', None) or {}
    classes = tuple(metainfo.get('classes') or ())
    if not classes:
        return
    if isinstance(model, ZegOTSegmentor):
        expected = model.class_names if training else model.test_classes
        if classes != tuple(expected):
            raise ValueError(
                f'`{key}` and the model disagree on the classes '
                f'({names_diff(classes, expected)}). Labels index the '
                "dataset's classes and the model's outputs index "
                f'{_MODEL_KEYS}: set both to the same split (the shipped '
                'configs pass one `zero_shot_split` variable to the datasets '
                'and the model).')
        unseen = metainfo.get('unseen_classes')
        ours = model_unseen(model, training=True)
        if (training and model.setting != 'fully' and unseen is not None
                and set(unseen) != set(ours)):
            raise ValueError(
                f'`{key}.zero_shot_split` marks {sorted(unseen)} unseen but '
                f'the model ({_MODEL_KEYS}) treats {sorted(ours)} as unseen: '
                'give both the same split.')
    else:
        head = getattr(model, 'decode_head', None)
        num_classes = getattr(head, 'num_classes', None)
        if isinstance(num_classes, int) and num_classes != len(classes):
            raise ValueError(
                f'`model.decode_head.num_classes`={num_classes} but `{key}` '
                f'has {len(classes)} classes: set num_classes='
                f'{len(classes)}, or the dataset\'s `metainfo.classes` to '
                'the classes the model predicts.')
    pipeline = getattr(getattr(dataset, 'pipeline', None), 'transforms', ())
    for index, transform in enumerate(pipeline):
        if isinstance(transform, ZegOTZeroShotLabels):
            check_zero_shot_labels(model, f'{key}.pipeline.{index}',
                                   transform, classes,
                                   metainfo.get('unseen_classes'))


def check_zero_shot_labels(model: nn.Module, key: str,
                           transform: ZegOTZeroShotLabels,
                           classes: Sequence[str],
                           dataset_unseen: Optional[Sequence[str]]) -> None:
    """Check a ``ZegOTZeroShotLabels`` against its dataset and the model.

    Its classes are the dataset's; unless its setting is ``'fully'``, it
    hides the model's unseen classes (with a :class:`ZegOTSegmentor`, whose
    ``setting`` it must also have) or else the dataset's.

    Raises:
        ValueError: On a disagreement, naming the keys and the fix.
    """
    split = transform.split
    if split.classes != tuple(classes):
        raise ValueError(
            f'`{key}` (ZegOTZeroShotLabels) relabels the classes of split '
            f'{split.name!r}, not those of its dataset '
            f'({names_diff(split.classes, classes)}): give it the '
            "dataset's `zero_shot_split`.")
    if isinstance(model, ZegOTSegmentor):
        if transform.setting != model.setting:
            raise ValueError(
                f'`{key}.setting`={transform.setting!r} but `model.setting`='
                f'{model.setting!r}: the transform hides the unseen labels '
                'for one setting and the model trains for another; use the '
                'same setting (or drop the transform: ZegOTSegmentor hides '
                'unseen labels itself).')
        expected = model_unseen(model, training=True)
        owner = f'the model ({_MODEL_KEYS})'
    else:
        expected = dataset_unseen
        owner = 'its dataset'
    if (transform.setting != 'fully' and expected is not None
            and set(split.unseen) != set(expected)):
        raise ValueError(
            f'`{key}` (ZegOTZeroShotLabels) hides {sorted(split.unseen)} but '
            f'{owner} has {sorted(expected)} unseen: give the transform the '
            'same `zero_shot_split`.')


def check_metric(model: nn.Module, key: str,
                 metric: ZeroShotIoUMetric) -> None:
    """Check that a ``ZeroShotIoUMetric`` reports the model's split.

    The metric reads its split from the dataset (checked against the model
    already) unless its own ``unseen_classes`` overrides it.

    Raises:
        ValueError: If its unseen classes are not the model's.
    """
    if metric.split is None or not isinstance(model, ZegOTSegmentor):
        return
    ours = model_unseen(model, training=False)
    if set(metric.split.unseen) != set(ours):
        raise ValueError(
            f'`{key}` (ZeroShotIoUMetric) reports {sorted(metric.split.unseen)}'
            f' as unseen but the model ({_MODEL_KEYS}) treats {sorted(ours)} '
            'as unseen: drop '
            f'`{key}.unseen_classes` so the metric reads the dataset\'s '
            'split, or make them agree.')


def check_label_files(key: str, dataset: Dataset, num_files: int,
                      ignore_index: int) -> None:
    """Read the first ``num_files`` label maps of ``dataset`` the way its
    pipeline does (its ``LoadAnnotations``: ``reduce_zero_label``,
    ``label_map``) and check every value is a class index in ``[0, K)`` or
    ``ignore_index``. Skipped when the pipeline loads no labels; a file that
    cannot be read is left to the dataset (a warning here).

    Raises:
        ValueError: Naming the file, the values and the fix.
    """
    pipeline = getattr(getattr(dataset, 'pipeline', None), 'transforms', ())
    loader = next((t for t in pipeline if isinstance(t, LoadAnnotations)),
                  None)
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    if loader is None or not classes:
        return
    num_classes = len(classes)
    for index in range(min(num_files, len(dataset))):
        info = dataset.get_data_info(index)
        path = info.get('seg_map_path')
        if path is None:
            continue
        try:
            label = loader(dict(info, seg_fields=[]))['gt_seg_map']
        except Exception as error:  # decoders raise many types
            print_log(
                f'{key}: could not read the label file {path} ({error}); '
                'the start-up label check skips it.',
                logger='current', level=logging.WARNING)
            continue
        values = np.unique(label)
        bad = [int(v) for v in values
               if not (0 <= v < num_classes or v == ignore_index)]
        if not bad:
            continue
        reduce_zero_label = bool(info.get('reduce_zero_label', False))
        hint = ''
        if not reduce_zero_label and max(bad) == num_classes:
            hint = (f'The values run up to {num_classes}, as in files that '
                    'store class k as k + 1 with 0 for background: set '
                    f'`{key}.reduce_zero_label=True`. ')
        raise ValueError(
            f'`{key}`: the label file {path} holds the values {bad} (read '
            f'with reduce_zero_label={reduce_zero_label}), which are neither '
            f'class indices in [0, {num_classes}) of its {num_classes} '
            f'classes nor the ignore index {ignore_index}. {hint}Prepare the '
            'labels as docs/data_preparation.md describes (mmseg\'s '
            'converter for this dataset), or set '
            f'`{key}.metainfo.classes` to the classes the labels index; '
            '`python tools/check_dataset.py CONFIG` checks every file.')


@HOOKS.register_module()
class ZegOTStartupCheckHook(Hook):
    """Check, before training, validation or testing starts, that the
    datasets, the model and the metrics agree, and that the first label
    files of each dataset hold valid labels.

    Runs once per data loader: ``before_train`` checks the training and the
    validation loaders, ``before_val`` the validation loader (when it has
    not been checked yet), ``before_test`` the test loader. See
    :func:`check_dataset`, :func:`check_zero_shot_labels`,
    :func:`check_metric` and :func:`check_label_files`. The first files are
    always the same ones, so a failing run fails the same way again.

    Args:
        num_label_files (int): Label files read per dataset (the first
            ones); 0 skips the label check. Defaults to 8.
    """

    priority = 'VERY_HIGH'

    def __init__(self, num_label_files: int = 8) -> None:
        if (isinstance(num_label_files, bool)
                or not isinstance(num_label_files, int)
                or num_label_files < 0):
            raise ValueError(
                'ZegOTStartupCheckHook: `num_label_files` must be an integer '
                f'>= 0 (0 skips the label check), got {num_label_files!r}.')
        self.num_label_files = num_label_files
        self._checked = set()

    def before_train(self, runner) -> None:
        """Check the training and (if any) the validation loader."""
        self._check(runner, 'train_dataloader', runner.train_dataloader,
                    training=True)
        if runner.val_loop is not None:
            self.before_val(runner)

    def before_val(self, runner) -> None:
        """Check the validation loader and ``val_evaluator``."""
        self._check(runner, 'val_dataloader', runner.val_dataloader,
                    evaluator=runner.val_evaluator,
                    evaluator_key='val_evaluator')

    def before_test(self, runner) -> None:
        """Check the test loader and ``test_evaluator``."""
        self._check(runner, 'test_dataloader', runner.test_dataloader,
                    evaluator=runner.test_evaluator,
                    evaluator_key='test_evaluator')

    def _check(self, runner, loader_key: str, dataloader,
               training: bool = False, evaluator=None,
               evaluator_key: str = '') -> None:
        if loader_key in self._checked:
            return
        self._checked.add(loader_key)
        model = unwrap_model(runner.model)
        ignore_index = getattr(getattr(model, 'decode_head', None),
                               'ignore_index', DEFAULT_IGNORE_INDEX)
        for key, dataset in leaf_datasets(dataloader.dataset,
                                          f'{loader_key}.dataset'):
            check_dataset(model, key, dataset, training)
            if self.num_label_files:
                check_label_files(key, dataset, self.num_label_files,
                                  ignore_index)
        for metric in getattr(evaluator, 'metrics', ()):
            if isinstance(metric, ZeroShotIoUMetric):
                check_metric(model, evaluator_key, metric)
