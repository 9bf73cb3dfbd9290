# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The dataset checker's class checks: every class list of a config (the
datasets', the model's, ``ZegOTZeroShotLabels``', ``ZeroShotIoUMetric``'s)
agrees with the first dataset's, and the sampled labels hold the classes
they should. Splits are parsed by :mod:`mmseg_zegot.datasets.splits`, as the
datasets and the model parse them."""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from ..class_names import names_diff
from ..splits import resolve_split, split_of_seen
from ..transforms import ZegOTZeroShotLabels
from .report import LOADER_SPLITS, Checked, Report


@dataclass(frozen=True)
class SplitView:
    """A class list and its unseen subset as one part of a config sees it.

    ``classes`` None: the dataset's; ``unseen`` None: no zero-shot split.
    """
    where: str
    name: Optional[str]
    classes: Optional[Tuple[str, ...]]
    unseen: Optional[Tuple[str, ...]]


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
        if model.get('class_names') is not None:
            split = split_of_seen(model['class_names'],
                                  model.get('seen_classes'))
            return SplitView('model.class_names / model.seen_classes', None,
                             split.classes, split.unseen)
    except ValueError as error:
        report.error(f'model: {error}')
    return None


def compare_split(reference: SplitView, other: SplitView,
                  report: Report) -> None:
    """Errors where ``other`` disagrees with the reference dataset's split
    (a warning where only one side has no unseen class)."""
    use = (f"use the dataset's split ({reference.name!r}) there too"
           if reference.name else "use the dataset's classes there too")
    if other.classes is not None and other.classes != reference.classes:
        diff = names_diff(other.classes, reference.classes, other.where,
                          reference.where)
        report.error(
            f'{other.where} and {reference.where} disagree on the classes '
            f'({diff}).',
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
    for split in LOADER_SPLITS:
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


