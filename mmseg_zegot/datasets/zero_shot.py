# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Datasets of the zero-shot benchmarks: mmseg's datasets, carrying their
seen / unseen split as metainfo.

Every dataset here takes ``zero_shot_split`` and adds to its ``metainfo``:

- ``seen_classes`` (tuple[str]): classes labelled during training,
- ``unseen_classes`` (tuple[str]): classes never labelled during training
  (inductive) or only named (transductive),
- ``zero_shot_split`` (str): the split's name.

Labels stay in the index space of *all* classes (generalised zero-shot
evaluation); hiding the unseen labels during training is the job of the
:class:`~mmseg_zegot.datasets.transforms.ZegOTZeroShotLabels` transform,
and :class:`~mmseg_zegot.evaluation.ZeroShotIoUMetric` reads the split from
``dataset_meta``.
"""
import logging
from typing import List, Optional

from mmengine import fileio
from mmengine.logging import print_log
from mmseg.datasets import (
    BaseSegDataset,
    COCOStuffDataset,
    PascalContextDataset59,
    PascalVOCDataset,
)
from mmseg.registry import DATASETS

from .file_checks import CorruptedFileError, check_sample_files
from .splits import (
    SplitSpec,
    get_split,
    resolve_split,
    split_metainfo,
)


class ZeroShotDatasetMixin:
    """Adds a zero-shot split to the metainfo of an mmseg dataset, and a
    policy for corrupted files.

    Put it before the dataset class in the bases. The split is checked
    against the dataset's classes (after ``metainfo`` overrides) before the
    file list is loaded.

    Corrupted files: before a sample goes through the pipeline, its image
    and label map are checked (:func:`.check_sample_files`: readable, not
    empty, PNG and JPEG files complete, the label map of its image's size);
    when the pipeline fails, both files are also decoded to tell a
    corrupted file from another error. A corrupted file raises
    :class:`.CorruptedFileError` naming it and the fix, unless
    ``skip_corrupted=True``:

    - for training (``test_mode=False``) the sample is skipped with a
      warning naming the file and the number of samples this process has
      skipped so far, and MMEngine loads another random sample in its place
      (``max_refetch``);
    - for validation and testing (``test_mode=True``, as the shipped
      configs set for their val/test datasets) every file is checked and
      decoded when the file list is loaded (one extra read of each file),
      and samples with corrupted files are left out of the list, each named
      in a warning, their number in the log. The metrics then cover the
      other samples.

    Args:
        zero_shot_split (str | dict | ZeroShotSplit | None): The split,
            parsed and checked against the dataset's classes by
            :func:`~mmseg_zegot.datasets.splits.resolve_split`. Defaults to
            None (every class seen).
        fully_supervised (bool): Keep the split's classes, none unseen (the
            supervised upper bound). Defaults to False.
        skip_corrupted (bool): Skip samples whose files are corrupted, with
            a warning, instead of stopping with an error. Defaults to False.
        lazy_init (bool): As for :class:`~mmengine.dataset.BaseDataset`.
        *args, **kwargs: Passed to the dataset class.
    """

    def __init__(self,
                 *args,
                 zero_shot_split: SplitSpec = None,
                 fully_supervised: bool = False,
                 skip_corrupted: bool = False,
                 lazy_init: bool = False,
                 **kwargs) -> None:
        if not isinstance(skip_corrupted, bool):
            raise ValueError('`skip_corrupted` must be True or False, got '
                             f'{skip_corrupted!r}.')
        self.skip_corrupted = skip_corrupted
        self.num_skipped = 0
        super().__init__(*args, lazy_init=True, **kwargs)
        classes = self._metainfo.get('classes')
        if not classes:
            raise ValueError(
                f'{type(self).__name__} has no classes: set '
                '`metainfo=dict(classes=[...])` in the dataset config.')
        split = resolve_split(zero_shot_split, classes)
        if fully_supervised:
            split = split.fully_supervised()
        self._metainfo.update(split_metainfo(split, self._metainfo))
        if not lazy_init:
            self.full_init()

    def full_init(self) -> None:
        """Check the data paths, then load the file list.

        mmseg's VOC and Context datasets assert on their image folder when
        they are built; here the check waits for the data to be needed (so
        ``lazy_init`` builds without data) and says what is missing.

        Raises:
            FileNotFoundError: If the image folder or the ``ann_file`` list
                does not exist.
        """
        if self._fully_initialized:
            return
        img_dir = self.data_prefix.get('img_path', '')
        if img_dir and not fileio.exists(img_dir, self.backend_args):
            raise FileNotFoundError(
                f'{type(self).__name__}: image folder {img_dir} does not '
                'exist. Prepare the dataset as docs/data_preparation.md says, '
                'or point `data_root` / `data_prefix.img_path` at it.')
        if self.ann_file and not fileio.exists(self.ann_file, self.backend_args):
            raise FileNotFoundError(
                f'{type(self).__name__}: image list {self.ann_file} does not '
                'exist. Prepare the dataset as docs/data_preparation.md says, '
                'or set `ann_file` (relative to `data_root`).')
        super().full_init()

    def filter_data(self) -> List[dict]:
        """With ``skip_corrupted`` in test mode, leave out the samples whose
        files are corrupted (each file read and decoded once)."""
        data_list = super().filter_data()
        if not (self.skip_corrupted and self.test_mode):
            return data_list
        kept = []
        for info in data_list:
            try:
                check_sample_files(info, self.backend_args, decode=True)
            except CorruptedFileError as error:
                self._warn_skipped(error)
                continue
            kept.append(info)
        if len(kept) < len(data_list):
            print_log(
                f'{type(self).__name__}: left out {len(data_list) - len(kept)}'
                f' of {len(data_list)} samples whose files are corrupted '
                '(skip_corrupted=True); the metrics cover the other '
                f'{len(kept)}.', logger='current', level=logging.WARNING)
        return kept

    def prepare_data(self, idx: int) -> Optional[dict]:
        """Check the sample's files, then run the pipeline.

        Returns:
            dict | None: The pipeline's output; None for a sample skipped
            under ``skip_corrupted`` (MMEngine then loads another one).

        Raises:
            CorruptedFileError: For a corrupted file, unless
                ``skip_corrupted`` (training only).
        """
        data_info = self.get_data_info(idx)
        try:
            check_sample_files(data_info, self.backend_args)
            try:
                return self.pipeline(data_info)
            except Exception as error:
                self._raise_if_corrupted(idx, error)
                raise
        except CorruptedFileError as error:
            if not self.skip_corrupted or self.test_mode:
                skip = ('' if self.skip_corrupted else
                        '; to skip such samples with a warning instead, set '
                        '`skip_corrupted=True` in the dataset config')
                raise CorruptedFileError(
                    f'{type(self).__name__}, sample {idx}: {error}. Replace '
                    'the file by an intact copy (re-extract or re-convert '
                    'the dataset; tools/check_dataset.py reads the files of '
                    'a dataset) or remove the sample from '
                    f'{self.ann_file or "the data folders"}{skip}.',
                    error.paths) from error
            self._warn_skipped(error)
            return None

    def _raise_if_corrupted(self, idx: int, error: Exception) -> None:
        """After the pipeline failed: raise CorruptedFileError if decoding
        the sample's files fails, chained to the pipeline's ``error``."""
        try:
            check_sample_files(self.get_data_info(idx), self.backend_args,
                               decode=True)
        except CorruptedFileError as corrupted:
            raise corrupted from error

    def _warn_skipped(self, error: CorruptedFileError) -> None:
        self.num_skipped += 1
        instead = ('left out of the list' if self.test_mode else
                   'another sample is loaded in its place')
        print_log(
            f'{type(self).__name__}: skipped a sample because {error} '
            f'(skip_corrupted=True; {instead}). This process has skipped '
            f'{self.num_skipped} sample(s) of this dataset so far.',
            logger='current', level=logging.WARNING)


_VOC = PascalVOCDataset.METAINFO


@DATASETS.register_module()
class ZegOTPascalVOC20Dataset(ZeroShotDatasetMixin, BaseSegDataset):
    """PASCAL VOC 2012 with its 20 object classes; background is ignored.

    The folder layout and files are those of mmseg's ``PascalVOCDataset``
    (``JPEGImages/*.jpg``, ``SegmentationClass/*.png`` or
    ``SegmentationClassAug/*.png`` through ``data_prefix``, and an
    ``ImageSets/Segmentation/*.txt`` list as ``ann_file``). The label files
    hold 0 (background) .. 20 and 255; with ``reduce_zero_label=True``
    background becomes 255 (ignored) and class ``k`` becomes ``k - 1``, so
    the labels index :attr:`METAINFO` ``classes``.

    Args:
        ann_file (str): The image list, e.g.
            ``'ImageSets/Segmentation/train.txt'``.
        reduce_zero_label (bool): Defaults to True (see above).
        zero_shot_split: Defaults to ``'voc'`` (unseen: pottedplant, sheep,
            sofa, train, tvmonitor). See :class:`ZeroShotDatasetMixin`.
        **kwargs: Passed to ``BaseSegDataset``.
    """
    METAINFO = dict(
        classes=get_split('voc').classes,
        palette=[
            colour for name, colour in zip(_VOC['classes'], _VOC['palette'])
            if name != 'background'
        ])

    def __init__(self,
                 ann_file: str,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = True,
                 zero_shot_split: SplitSpec = 'voc',
                 **kwargs) -> None:
        super().__init__(
            ann_file=ann_file,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            zero_shot_split=zero_shot_split,
            **kwargs)


@DATASETS.register_module()
class ZegOTPascalContext59Dataset(ZeroShotDatasetMixin, BaseSegDataset):
    """PASCAL Context with 59 classes (background ignored), in mmseg's
    ``pascal_context`` layout (``JPEGImages``, ``SegmentationClassContext``,
    ``ImageSets/SegmentationContext/{train,val}.txt``; labels 0 = background
    and 1..59 as written by mmseg's ``tools/dataset_converters/
    pascal_context.py``; ``reduce_zero_label=True``).

    Args:
        zero_shot_split: Defaults to ``'context59'`` (unseen: aeroplane,
            bird, boat, cat, cow, fence, keyboard, motorbike, sofa,
            tvmonitor). See :class:`ZeroShotDatasetMixin`.
        **kwargs: Passed to ``BaseSegDataset``.
    """

    METAINFO = PascalContextDataset59.METAINFO

    def __init__(self,
                 ann_file: str = '',
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = True,
                 zero_shot_split: SplitSpec = 'context59',
                 **kwargs) -> None:
        super().__init__(
            ann_file=ann_file,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            zero_shot_split=zero_shot_split,
            **kwargs)


@DATASETS.register_module()
class ZegOTCOCOStuffDataset(ZeroShotDatasetMixin, COCOStuffDataset):
    """COCO-Stuff 164k with 171 classes, in mmseg's ``coco_stuff164k``
    layout (``images/{train,val}2017/*.jpg``,
    ``annotations/{train,val}2017/*_labelTrainIds.png`` with train IDs
    0..170 and 255 = ignore, as written by mmseg's
    ``tools/dataset_converters/coco_stuff164k.py``).

    Args:
        zero_shot_split: Defaults to ``'coco-stuff'`` (15 unseen classes,
            see :data:`~mmseg_zegot.datasets.splits.SPLITS`). See
            :class:`ZeroShotDatasetMixin`.
        **kwargs: Passed to ``COCOStuffDataset``.
    """

    def __init__(self,
                 zero_shot_split: SplitSpec = 'coco-stuff',
                 **kwargs) -> None:
        super().__init__(zero_shot_split=zero_shot_split, **kwargs)


@DATASETS.register_module()
class ZegOTZeroShotDataset(ZeroShotDatasetMixin, BaseSegDataset):
    """Any dataset in ``BaseSegDataset``'s layout, whose classes come from
    ``metainfo`` (custom or toy worlds).

    Example::

        dataset = dict(
            type='ZegOTZeroShotDataset',
            data_root='data/toy',
            data_prefix=dict(img_path='img_dir/train',
                             seg_map_path='ann_dir/train'),
            metainfo=dict(classes=('cat', 'dog', 'grass', 'sky')),
            zero_shot_split=dict(unseen_classes=['dog']))

    Args:
        metainfo (dict): Must hold ``classes`` (label index order).
        img_suffix (str): Defaults to ``'.jpg'``.
        seg_map_suffix (str): Defaults to ``'.png'``.
        reduce_zero_label (bool): Whether label 0 is an ignored background
            (then class ``k`` is stored as ``k + 1``). Defaults to False.
        zero_shot_split: See :class:`ZeroShotDatasetMixin`; a dict without
            ``classes`` uses ``metainfo['classes']``. Defaults to None.
        **kwargs: Passed to ``BaseSegDataset``.
    """
