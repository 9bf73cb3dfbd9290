# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The dataset checker's file checks: the folders and listed files exist,
and a sample of label files (and their images) reads as the training
pipeline reads them."""
import copy
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine.utils import ProgressBar
from mmseg.datasets.transforms import LoadAnnotations
from PIL import Image

from .advice import DOCS, fixes
from .report import Checked, Report, listed


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


