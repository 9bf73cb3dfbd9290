# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Check a prepared dataset against the config that reads it.

    python tools/check_dataset.py CONFIG [--split train|val|test|all]
        [--max-images N] [--cfg-options KEY=VALUE ...]

Every dataset of the config's ``{train,val,test}_dataloader`` is built as
the Runner builds it (each dataset inside ``ConcatDataset`` /
``RepeatDataset`` wrappers on its own) and checked:

- ``data_root``, ``ann_file`` and the image and label folders exist;
- every listed image and label file exists;
- on up to N label files spread evenly over the list (the same files on
  every run), the label is a single-channel 8-bit image; its values, as
  mmseg's ``LoadAnnotations`` reads them (after ``reduce_zero_label`` /
  ``label_map``), lie in [0, K) or are the ignore index; it has its image's
  size;
- the class lists of the datasets, of the model (``zero_shot_split`` /
  ``class_names``), of ``ZegOTZeroShotLabels`` transforms and of
  ``ZeroShotIoUMetric`` agree. Seen classes that no sampled training label
  holds, and unseen classes that no sampled validation label holds, are
  warnings.

Prints a summary; exits 0 when every check passes, 1 with the list of
errors otherwise. Local files only. See docs/data_preparation.md.
"""
import argparse
import copy
import os
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import _bootstrap_path  # noqa: F401

import mmseg_zegot  # noqa: F401  (installs the mmcv.ops stand-in mmseg needs)

# isort: split
import mmseg
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine.config import ConfigDict, DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar
from mmseg.datasets import (
    BaseSegDataset,
    COCOStuffDataset,
    PascalContextDataset,
    PascalContextDataset59,
    PascalVOCDataset,
)
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import DATASETS
from PIL import Image
from prettytable import PrettyTable

from mmseg_zegot.datasets import (
    ZegOTCOCOStuffDataset,
    ZegOTPascalContext59Dataset,
    ZegOTPascalVOC20Dataset,
)
from mmseg_zegot.datasets.splits import resolve_split
from mmseg_zegot.datasets.transforms import ZegOTZeroShotLabels
from mmseg_zegot.utils import load_config, root_cause

SPLITS = ('train', 'val', 'test')
DOCS = 'docs/data_preparation.md'
#: How many offending files an error message lists.
MAX_LISTED = 5
CONVERTER_DIR = osp.join(
    osp.dirname(mmseg.__file__), '.mim', 'tools', 'dataset_converters')


def converter(name: str) -> str:
    """Path of one of mmseg's dataset converters, relative to the working
    directory when it lies below it."""
    path = osp.join(CONVERTER_DIR, name)
    relative = osp.relpath(path)
    return path if relative.startswith('..') else relative


def fixes(kind: Optional[str]) -> Dict[str, str]:
    """How to fix each problem, for a dataset kind (see :func:`dataset_kind`).

    Keys: ``root`` (what ``data_root`` is), ``images``, ``labels``,
    ``aug_labels`` (VOC's SBD labels), ``values``, ``channels``, ``size``,
    ``unreadable``; the advice for other datasets names the config keys.
    """
    voc_tar = ('extract VOCtrainval_11-May-2012.tar so that data_root is '
               'its VOCdevkit/VOC2012 folder')
    voc_aug = (f'run `python {converter("voc_aug.py")} data/VOCdevkit '
               'data/VOCdevkit/VOCaug --nproc 8` on the extracted SBD '
               'benchmark.tgz (writes SegmentationClassAug/ and '
               'ImageSets/Segmentation/aug.txt)')
    context = (f'run `python {converter("pascal_context.py")} data/VOCdevkit '
               'data/VOCdevkit/VOC2010/trainval_merged.json` (needs the '
               'Detail API; writes SegmentationClassContext/ and '
               'ImageSets/SegmentationContext/{train,val}.txt)')
    coco = (f'run `python {converter("coco_stuff164k.py")} <data_root> '
            '--nproc 8` after unzipping stuffthingmaps_trainval2017.zip into '
            '<data_root>/annotations/ (writes *_labelTrainIds.png)')
    by_kind = {
        'voc': dict(
            root='the VOCdevkit/VOC2012 folder of the VOC 2012 tar',
            images=f'{voc_tar} (JPEGImages/)',
            labels=(f'{voc_tar} (SegmentationClass/, '
                    'ImageSets/Segmentation/{train,val}.txt)'),
            aug_labels=voc_aug,
            values=('VOC labels hold 0 (background), 1..20 and 255 (object '
                    'borders), read with reduce_zero_label=True: take '
                    f'SegmentationClass/ from the VOC tar, or {voc_aug}')),
        'context': dict(
            root='the VOCdevkit/VOC2010 folder of the VOC 2010 tar',
            images=('extract VOCtrainval_03-May-2010.tar so that data_root '
                    'is its VOCdevkit/VOC2010 folder (JPEGImages/)'),
            labels=context,
            values=('the labels must hold 0 (background) and 1..59, read '
                    f'with reduce_zero_label=True: {context}')),
        'coco-stuff': dict(
            root=('the folder holding images/{train,val}2017 and '
                  'annotations/{train,val}2017'),
            images=('unzip train2017.zip and val2017.zip into '
                    '<data_root>/images/'),
            labels=coco,
            values=('the labels must be train IDs (0..170, 255), not the '
                    f'raw stuffthingmaps PNGs (0..181): {coco}')),
    }
    found = dict(
        root='the folder that data_prefix and ann_file are relative to',
        images='check data_root, data_prefix.img_path and img_suffix',
        labels='check data_root, data_prefix.seg_map_path and seg_map_suffix',
        values=('check reduce_zero_label and metainfo.classes against the '
                'label files'),
        channels=('labels must be single-channel 8-bit PNGs of class indices '
                  '(mode L or P) as the converters write them; a colour (RGB) '
                  'rendering of the labels cannot be read as classes'),
        size=('an image and its label must have the same size: the label '
              'belongs to another image, or one of them was resized; '
              'regenerate the labels'),
        unreadable=('the file is truncated or not an image: download or '
                    'convert it again'))
    found.update(by_kind.get(kind, {}))
    found.setdefault('aug_labels', found['labels'])
    return found


def dataset_kind(dataset_type) -> Optional[str]:
    """``'voc'``, ``'context'``, ``'coco-stuff'`` or None (another dataset),
    from a dataset config's ``type``."""
    cls = (DATASETS.get(dataset_type)
           if isinstance(dataset_type, str) else dataset_type)
    if not isinstance(cls, type):
        return None
    for kind, bases in (('voc', (PascalVOCDataset, ZegOTPascalVOC20Dataset)),
                        ('context', (PascalContextDataset,
                                     PascalContextDataset59,
                                     ZegOTPascalContext59Dataset)),
                        ('coco-stuff', (COCOStuffDataset,
                                        ZegOTCOCOStuffDataset))):
        if issubclass(cls, bases):
            return kind
    return None


@dataclass
class Report:
    """The errors (the check fails) and warnings found so far."""
    errors: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    def error(self, message: str, fix: Optional[str] = None) -> None:
        self.errors.append(message + (f'\n     Fix: {fix}.' if fix else ''))

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@dataclass
class Checked:
    """One dataset (no wrapper) and what was found in it.

    ``class_images`` (K,) counts the sampled label files holding each class.
    """
    split: str
    key: str
    cfg: ConfigDict
    kind: Optional[str] = None
    dataset: Optional[BaseSegDataset] = None
    num_listed: int = 0
    missing_images: int = 0
    missing_labels: int = 0
    sampled: int = 0
    bad_labels: int = 0
    class_images: Optional[np.ndarray] = None


@dataclass(frozen=True)
class SplitView:
    """A class list and its unseen subset as one part of a config sees it.

    ``classes`` None: the dataset's; ``unseen`` None: no zero-shot split.
    """
    where: str
    name: Optional[str]
    classes: Optional[Tuple[str, ...]]
    unseen: Optional[Tuple[str, ...]]


def dataset_leaves(cfg: ConfigDict, key: str) -> Iterator[Tuple[str,
                                                                ConfigDict]]:
    """(config key, config) of every dataset inside dataset wrappers:
    ``datasets`` lists (``ConcatDataset``) and a ``dataset`` dict
    (``RepeatDataset``, ``ClassBalancedDataset``, ...)."""
    if isinstance(cfg.get('datasets'), (list, tuple)):
        for index, inner in enumerate(cfg['datasets']):
            yield from dataset_leaves(inner, f'{key}.datasets.{index}')
    elif isinstance(cfg.get('dataset'), dict):
        yield from dataset_leaves(cfg['dataset'], f'{key}.dataset')
    else:
        yield key, cfg


def select_datasets(cfg, split: str,
                    report: Report) -> Tuple[List[Checked], List[str]]:
    """The datasets to check, and notes on what is skipped."""
    splits = SPLITS if split == 'all' else (split, )
    chosen: Dict[str, ConfigDict] = {}
    checked, notes = [], []
    for name in splits:
        loader = cfg.get(f'{name}_dataloader') or {}
        dataset_cfg = loader.get('dataset')
        if not dataset_cfg:
            if split == 'all':
                notes.append(f'The config has no {name}_dataloader.dataset: '
                             'skipped.')
            else:
                report.error(f'The config has no {name}_dataloader.dataset.',
                             fix='choose another --split')
            continue
        same = [other for other, c in chosen.items() if c == dataset_cfg]
        if same:
            notes.append(f'{name}_dataloader.dataset is '
                         f'{same[0]}_dataloader.dataset: checked once.')
            continue
        chosen[name] = dataset_cfg
        for key, leaf in dataset_leaves(dataset_cfg,
                                        f'{name}_dataloader.dataset'):
            checked.append(
                Checked(name, key, leaf, kind=dataset_kind(leaf.get('type'))))
    return checked, notes


def under_root(data_root: Optional[str], path: str) -> str:
    """``path`` joined to ``data_root`` as mmengine's ``BaseDataset`` does."""
    if not path or osp.isabs(path) or not data_root:
        return path
    return osp.join(data_root, path)


def label_source(ann_file: Optional[str], seg_prefix: Optional[str]) -> str:
    """``'aug_labels'`` for VOC's SBD part (``aug.txt`` /
    ``SegmentationClassAug``), else ``'labels'``: the key of :func:`fixes`."""
    is_aug = ('aug' in osp.basename(ann_file or '').lower()
              or 'Aug' in (seg_prefix or ''))
    return 'aug_labels' if is_aug else 'labels'


def check_paths(item: Checked, report: Report) -> bool:
    """Whether ``data_root``, ``ann_file`` and the image and label folders
    exist (errors for those that do not)."""
    key, cfg, fix = item.key, item.cfg, fixes(item.kind)
    data_root = cfg.get('data_root')
    if data_root and not osp.isdir(data_root):
        report.error(
            f'{key}.data_root: the folder {data_root!r} does not exist '
            f'(relative paths start at {os.getcwd()}).',
            fix=(f'data_root is {fix["root"]}: prepare the dataset as in '
                 f'{DOCS}, or point the config at your copy: --cfg-options '
                 f'{key}.data_root=/path/to/it'))
        return False
    prefix = cfg.get('data_prefix') or {}
    seg_prefix = prefix.get('seg_map_path')
    ann_file = under_root(data_root, cfg.get('ann_file') or '')
    label_fix = fix[label_source(ann_file, seg_prefix)]
    found = True
    if ann_file and not osp.exists(ann_file):
        report.error(
            f'{key}.ann_file: the image list {ann_file} does not exist.',
            fix=f'{label_fix}, or set {key}.ann_file')
        found = False
    img_dir = under_root(data_root, prefix.get('img_path') or '')
    if not osp.isdir(img_dir or os.curdir):
        report.error(
            f'{key}.data_prefix.img_path: the image folder {img_dir} does '
            'not exist.',
            fix=fix['images'])
        found = False
    if seg_prefix is not None:
        seg_dir = under_root(data_root, seg_prefix)
        if not osp.isdir(seg_dir or os.curdir):
            report.error(
                f'{key}.data_prefix.seg_map_path: the label folder {seg_dir} '
                'does not exist.',
                fix=label_fix)
            found = False
    return found


def build_dataset(item: Checked,
                  report: Report) -> Optional[BaseSegDataset]:
    """The dataset, built from its config; None (and an error) on failure."""
    try:
        return DATASETS.build(copy.deepcopy(item.cfg))
    except (AssertionError, KeyError, OSError, TypeError,
            ValueError) as error:
        cause = root_cause(error)
        report.error(
            f'{item.key}: building {item.cfg.get("type")} failed: '
            f'{type(cause).__name__}: {cause}',
            fix=f'correct {item.key} in the config')
        return None


def listed(paths: Sequence[str], total: int) -> str:
    """The first :data:`MAX_LISTED` paths, one per line, and how many more."""
    lines = [f'\n       {path}' for path in paths[:MAX_LISTED]]
    if len(paths) > MAX_LISTED:
        lines.append(f'\n       ... and {len(paths) - MAX_LISTED} more')
    return f'{len(paths)} of {total}:' + ''.join(lines)


def check_files(item: Checked, report: Report) -> List[dict]:
    """The data infos of the dataset whose image and label files exist;
    errors for the missing ones."""
    dataset, fix = item.dataset, fixes(item.kind)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    item.num_listed = len(infos)
    if not infos:
        report.error(
            f'{item.key}: the dataset lists no image (ann_file '
            f'{dataset.ann_file!r}, images {dataset.data_prefix.get("img_path")}'
            f'/*{getattr(dataset, "img_suffix", "")}).',
            fix=fix['images'])
        return []
    missing_images = [i['img_path'] for i in infos
                      if not osp.isfile(i['img_path'])]
    labelled = [i for i in infos if 'seg_map_path' in i]
    missing_labels = [i['seg_map_path'] for i in labelled
                      if not osp.isfile(i['seg_map_path'])]
    item.missing_images, item.missing_labels = (len(missing_images),
                                                len(missing_labels))
    if missing_images:
        report.error(
            f'{item.key}: images listed by the dataset are missing, '
            f'{listed(missing_images, len(infos))}',
            fix=fix['images'])
    if missing_labels:
        source = label_source(dataset.ann_file,
                              dataset.data_prefix.get('seg_map_path'))
        report.error(
            f'{item.key}: label files are missing, '
            f'{listed(missing_labels, len(labelled))}',
            fix=fix[source])
    if len(labelled) < len(infos):
        report.warn(f'{item.key}: no data_prefix.seg_map_path, labels not '
                    'checked.')
    missing = set(missing_images) | set(missing_labels)
    return [
        i for i in labelled
        if i['img_path'] not in missing and i['seg_map_path'] not in missing
    ]


def sample_indices(total: int, count: int) -> List[int]:
    """``min(count, total)`` distinct indices spread evenly over
    ``range(total)`` (the first and, for ``count > 1``, the last included)."""
    if total == 0 or count == 0:
        return []
    return np.linspace(0, total - 1, num=min(count, total)).round().astype(
        int).tolist()


def read_sample(info: dict, load_image: LoadImageFromFile,
                load_label: LoadAnnotations, num_classes: int,
                ignore_index: int) -> Tuple[Optional[np.ndarray], Optional[
                    Tuple[str, str, str]]]:
    """Check one image / label pair.

    Returns:
        tuple: The label's values, or None; and None or the problem as
        ``(problem, file, detail)``.
    """
    label_path, image_path = info['seg_map_path'], info['img_path']
    try:
        with Image.open(label_path) as label:
            bands, mode = label.getbands(), label.mode
            stored = np.asarray(label)
    except OSError as error:
        return None, ('unreadable_label', label_path, str(error))
    if len(bands) != 1:
        return None, ('channels', label_path,
                      f'{len(bands)} channels (mode {mode})')
    if mode not in ('L', 'P'):
        return None, ('channels', label_path, f'mode {mode}, not 8-bit')
    try:
        gt = load_label(copy.deepcopy(info))['gt_seg_map']
    except OSError as error:
        return None, ('unreadable_label', label_path, str(error))
    try:
        image = load_image(copy.deepcopy(info))['img']
    except (AssertionError, OSError, ValueError) as error:
        return None, ('unreadable_image', image_path, str(error))
    values = np.unique(gt)
    bad = values[(values >= num_classes) & (values != ignore_index)]
    if bad.size:
        raw = np.unique(stored[np.isin(gt, bad)])
        detail = f'values {bad.tolist()}'
        if not np.array_equal(raw, bad):
            detail += f' (stored as {raw.tolist()} in the file)'
        return None, ('values', label_path, detail)
    if gt.shape[:2] != image.shape[:2]:
        return None, ('size', label_path,
                      f'label {gt.shape[0]}x{gt.shape[1]}, image '
                      f'{image.shape[0]}x{image.shape[1]} ({image_path})')
    return values, None


def check_labels(item: Checked, infos: List[dict], max_images: int,
                 report: Report) -> None:
    """Read a sample of label files (and their images) as the training
    pipeline does; count the classes they hold."""
    dataset, fix = item.dataset, fixes(item.kind)
    meta = dataset.metainfo
    num_classes = len(meta['classes'])
    ignore_index = getattr(dataset, 'ignore_index', 255)
    item.class_images = np.zeros(num_classes, np.int64)
    picked = [infos[i] for i in sample_indices(len(infos), max_images)]
    item.sampled = len(picked)
    if not picked:
        return
    print(f'Reading {len(picked)} labels and images of {item.key}')
    load_image, load_label = LoadImageFromFile(), LoadAnnotations()
    problems: Dict[str, List[str]] = {}
    bar = ProgressBar(len(picked), file=sys.stdout)
    for info in picked:
        values, problem = read_sample(info, load_image, load_label,
                                      num_classes, ignore_index)
        if problem is None:
            item.class_images[values[values < num_classes]] += 1
        else:
            name, path, detail = problem
            problems.setdefault(name, []).append(f'{path}: {detail}')
        bar.update()
    print()
    item.bad_labels = sum(len(entries) for entries in problems.values())
    reading = (f'reduce_zero_label={meta.get("reduce_zero_label")}'
               + (', label_map' if meta.get('label_map') else ''))
    what = dict(
        unreadable_label='label files cannot be read',
        unreadable_image='images cannot be read',
        channels='label files are not single-channel 8-bit class maps',
        values=(f'label files hold values outside [0, {num_classes}) and '
                f'the ignore index {ignore_index}, as LoadAnnotations reads '
                f'them ({reading}; {num_classes} classes)'),
        size='label files differ in size from their image')
    for name, entries in problems.items():
        report.error(
            f'{item.key}: {what[name]}, {listed(entries, len(picked))}',
            fix=fix['unreadable' if name.startswith('unreadable') else name])


def dataset_split(item: Checked) -> SplitView:
    """The split in a built dataset's metainfo."""
    meta = item.dataset.metainfo
    unseen = meta.get('unseen_classes')
    return SplitView(item.key, meta.get('zero_shot_split'),
                     tuple(meta['classes']),
                     None if unseen is None else tuple(unseen))


def model_split(cfg, report: Report) -> Optional[SplitView]:
    """The split the model is configured with, if any."""
    model = cfg.get('model') or {}
    try:
        if model.get('zero_shot_split') is not None:
            split = resolve_split(model['zero_shot_split'])
            return SplitView('model.zero_shot_split', split.name,
                             split.classes, split.unseen)
    except ValueError as error:
        report.error(f'model.zero_shot_split: {error}')
        return None
    if model.get('class_names') is None:
        return None
    classes = tuple(model['class_names'])
    seen = set(model.get('seen_classes') or classes)
    return SplitView('model.class_names / model.seen_classes', None, classes,
                     tuple(c for c in classes if c not in seen))


def names_diff(ours: Sequence[str], theirs: Sequence[str]) -> str:
    """How two class lists differ, in words."""
    only_ours = [c for c in ours if c not in theirs]
    only_theirs = [c for c in theirs if c not in ours]
    if not only_ours and not only_theirs:
        return 'the same names in a different order'
    return f'only there: {only_ours}; only in the dataset: {only_theirs}'


def compare_split(reference: SplitView, other: SplitView,
                  report: Report) -> None:
    """Errors where ``other`` disagrees with the reference dataset's split
    (a warning where only one side has no unseen class)."""
    use = (f"use the dataset's split ({reference.name!r}) there too"
           if reference.name else "use the dataset's classes there too")
    if other.classes is not None and other.classes != reference.classes:
        report.error(
            f'{other.where} has {len(other.classes)} classes and '
            f'{reference.where} has {len(reference.classes)}: '
            f'{names_diff(other.classes, reference.classes)}.',
            fix=use)
        return
    if other.unseen is None or reference.unseen is None:
        return
    if other.unseen != reference.unseen:
        message = (f'{other.where} has unseen classes {list(other.unseen)}, '
                   f'{reference.where} has {list(reference.unseen)}.')
        if other.unseen and reference.unseen:
            report.error(message, fix=use)
        else:
            report.warn(message + ' (one side is fully supervised)')


def check_splits(cfg, items: List[Checked], splits: Sequence[str],
                 report: Report) -> Optional[SplitView]:
    """Check that every class list of the config matches the datasets'.

    Returns:
        SplitView: The reference (the first built dataset's), or None.
    """
    built = [item for item in items if item.dataset is not None]
    if not built:
        return None
    reference = dataset_split(built[0])
    views = [dataset_split(item) for item in built[1:]]
    for item in built:
        transforms = getattr(item.dataset.pipeline, 'transforms', [])
        views += [
            SplitView(f'{item.key}.pipeline ZegOTZeroShotLabels',
                      t.split.name, t.split.classes, t.split.unseen)
            for t in transforms if isinstance(t, ZegOTZeroShotLabels)
        ]
    model = model_split(cfg, report)
    if model is not None:
        views.append(model)
    for view in views:
        compare_split(reference, view, report)

    head = (cfg.get('model') or {}).get('decode_head')
    num_classes = head.get('num_classes') if isinstance(head, dict) else None
    if isinstance(num_classes, int) and num_classes != len(reference.classes):
        report.error(
            f'model.decode_head.num_classes is {num_classes}, the dataset '
            f'({reference.where}) has {len(reference.classes)} classes.',
            fix=f'set model.decode_head.num_classes={len(reference.classes)}')

    for split in splits:
        evaluators = cfg.get(f'{split}_evaluator') or []
        if isinstance(evaluators, dict):
            evaluators = [evaluators]
        for evaluator in evaluators:
            if evaluator.get('type') != 'ZeroShotIoUMetric':
                continue
            where = f'{split}_evaluator.unseen_classes'
            unseen = evaluator.get('unseen_classes')
            if unseen is not None:
                compare_split(reference,
                              SplitView(where, None, None, tuple(unseen)),
                              report)
            elif reference.unseen is None:
                report.error(
                    f'{split}_evaluator is ZeroShotIoUMetric, but '
                    f'{reference.where} has no zero-shot split in its '
                    'metainfo.',
                    fix=('use a ZegOT dataset type (e.g. '
                         'ZegOTPascalVOC20Dataset) or set '
                         f'{where}'))
    return reference


def check_coverage(items: List[Checked], reference: SplitView,
                   report: Report) -> None:
    """Warn about seen classes absent from the sampled training labels and
    unseen classes absent from the sampled validation / test labels."""
    unseen = set(reference.unseen or ())
    for split in SPLITS:
        parts = [i for i in items if i.split == split and i.sampled]
        if not parts:
            continue
        counts = sum(i.class_images for i in parts)
        sampled = sum(i.sampled for i in parts)
        if split == 'train':
            wanted = [c for c in reference.classes if c not in unseen]
            kind = 'seen'
        else:
            wanted = [c for c in reference.classes if c in unseen]
            kind = 'unseen'
        absent = [c for c in wanted if counts[reference.classes.index(c)] == 0]
        if absent:
            listed_total = sum(i.num_listed for i in parts)
            more = (f' (of {listed_total} listed; a larger --max-images '
                    'reads more)' if sampled < listed_total else '')
            report.warn(
                f'{len(absent)} of {len(wanted)} {kind} classes appear in '
                f'none of the {sampled} {split} label files read{more}: '
                f'{absent}.')


def print_summary(items: List[Checked], reference: Optional[SplitView],
                  notes: List[str], report: Report) -> None:
    """Print the datasets table, the classes table, notes, warnings and
    errors."""
    table = PrettyTable()
    table.field_names = [
        'split', 'dataset', 'type', 'images', 'missing images',
        'missing labels', 'sampled', 'bad labels'
    ]
    for item in items:
        built = item.dataset is not None
        table.add_row([
            item.split, item.key, item.cfg.get('type'),
            item.num_listed if built else '-',
            item.missing_images if built else '-',
            item.missing_labels if built else '-',
            item.sampled if built else '-',
            item.bad_labels if built else '-'
        ])
    print('\nDatasets:')
    print(table)
    sampled = [s for s in SPLITS
               if any(i.split == s and i.sampled for i in items)]
    if reference is not None and sampled:
        unseen = set(reference.unseen or ())
        classes = PrettyTable()
        classes.field_names = ['#', 'class', 'split'] + [
            f'{s} images' for s in sampled]
        counts = {
            s: sum(i.class_images for i in items if i.split == s and i.sampled)
            for s in sampled
        }
        for index, name in enumerate(reference.classes):
            split = '-' if reference.unseen is None else (
                'unseen' if name in unseen else 'seen')
            classes.add_row([index, name, split] +
                            [int(counts[s][index]) for s in sampled])
        described = ('no zero-shot split' if reference.unseen is None else
                     f'split {reference.name!r}: '
                     f'{len(reference.classes) - len(unseen)} seen, '
                     f'{len(unseen)} unseen')
        print(f'\nClasses ({len(reference.classes)}, {described}): sampled '
              'label files holding each class')
        print(classes)
        for split in sampled:
            present = counts[split] > 0
            line = [f'{split}: {int(present.sum())} of '
                    f'{len(reference.classes)} classes present']
            if reference.unseen is not None:
                mask = np.array([c in unseen for c in reference.classes])
                line.append(f'seen {int(present[~mask].sum())}/'
                            f'{int((~mask).sum())}, unseen '
                            f'{int(present[mask].sum())}/{int(mask.sum())}')
            print('  ' + '; '.join(line))
    for note in notes:
        print(f'Note: {note}')
    if report.warnings:
        print(f'\nWarnings ({len(report.warnings)}):')
        for warning in report.warnings:
            print(f'  - {warning}')
    if report.errors:
        print(f'\nErrors ({len(report.errors)}):')
        for index, error in enumerate(report.errors, 1):
            print(f'  {index}. {error}')
        print(f'\nFAILED: {len(report.errors)} error(s).')
    else:
        print('\nOK: the dataset matches the config.')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Check a prepared dataset against a config.')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--split',
        choices=SPLITS + ('all', ),
        default='all',
        help='which dataloader datasets to check (default: all)')
    parser.add_argument(
        '--max-images',
        type=int,
        default=200,
        help='label files (and their images) to read per dataset, spread '
        'evenly over its list; 0 only checks that the files exist '
        '(default: 200)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file, e.g. '
        'train_dataloader.dataset.data_root=/data/VOC2012 (a ConcatDataset '
        'member: train_dataloader.dataset.datasets.0.data_root=...)')
    args = parser.parse_args(argv)
    if args.max_images < 0:
        parser.error(f'--max-images must be >= 0, got {args.max_images}')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the checks; 0 when all pass, 1 otherwise."""
    args = parse_args(argv)
    cfg = load_config(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope('mmseg')
    report = Report()
    items, notes = select_datasets(cfg, args.split, report)
    print(f'Checking the datasets of {args.config} (up to {args.max_images} '
          'label files each)')
    for item in items:
        if not check_paths(item, report):
            continue
        item.dataset = build_dataset(item, report)
        if item.dataset is None:
            continue
        infos = check_files(item, report)
        check_labels(item, infos, args.max_images, report)
    splits = SPLITS if args.split == 'all' else (args.split, )
    reference = check_splits(cfg, items, splits, report)
    if reference is not None:
        check_coverage(items, reference, report)
    print_summary(items, reference, notes, report)
    return 1 if report.errors else 0


if __name__ == '__main__':
    sys.exit(main())
