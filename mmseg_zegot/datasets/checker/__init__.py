# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Check a prepared dataset against the config that reads it (the logic of
``tools/check_dataset.py``).

Every dataset of the config's ``{train,val,test}_dataloader`` is built as
the Runner builds it (each dataset inside ``ConcatDataset`` /
``RepeatDataset`` wrappers on its own, :func:`leaf_datasets`) and checked:

- ``data_root``, ``ann_file`` and the image and label folders exist;
- every listed image and label file exists;
- on up to N label files spread evenly over the list (the same files on
  every run), the label is a single-channel 8-bit image; its values, as
  mmseg's ``LoadAnnotations`` reads them (after ``reduce_zero_label`` /
  ``label_map``), lie in [0, K) or are the ignore index; it has its image's
  size (:mod:`.files`);
- the class lists of the datasets, of the model (``zero_shot_split`` /
  ``class_names``), of ``ZegOTZeroShotLabels`` transforms and of
  ``ZeroShotIoUMetric`` agree. Seen classes that no sampled training label
  holds, and unseen classes that no sampled validation label holds, are
  warnings (:mod:`.classes`).

Every problem is reported with its fix (:mod:`.advice`: mmseg's converters
for VOC, Context and COCO-Stuff). It lives under ``datasets/`` because it
checks datasets with the datasets' own code: they are built by their
registry, their splits parsed by :mod:`mmseg_zegot.datasets.splits`, their
labels read by mmseg's transforms; the start-up check
(:class:`~mmseg_zegot.engine.hooks.ZegOTStartupCheckHook`) shares
:func:`leaf_datasets`. Local files only.
"""
from .check import check_datasets, print_summary
from .report import LOADER_SPLITS, Checked, Report
from .selection import leaf_datasets

__all__ = [
    'LOADER_SPLITS', 'Checked', 'Report', 'check_datasets', 'leaf_datasets',
    'print_summary'
]
