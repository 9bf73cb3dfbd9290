# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The dataset checker's run: every check on every dataset of a config, and
the printed summary (the checker's report, on standard output)."""
from typing import List, Optional

import numpy as np
from prettytable import PrettyTable

from .classes import SplitView, check_coverage, check_splits
from .files import check_files, check_labels, check_paths
from .report import LOADER_SPLITS, Checked, Report
from .selection import build_dataset, select_datasets


def check_datasets(cfg, split: str = 'all', max_images: int = 200) -> int:
    """Check the datasets of a config against the config, printing a
    summary (see :mod:`mmseg_zegot.datasets.checker`).

    Args:
        cfg (Config): The config, with mmseg's default scope set.
        split (str): Which data loaders' datasets to check: ``'train'``,
            ``'val'``, ``'test'`` or ``'all'``. Defaults to ``'all'``.
        max_images (int): Label files (and their images) to read per
            dataset, spread evenly over its list; 0 only checks that the
            files exist. Defaults to 200.

    Returns:
        int: 0 when every check passes, 1 otherwise.
    """
    report = Report()
    items, notes = select_datasets(cfg, split, report)
    for item in items:
        if not check_paths(item, report):
            continue
        item.dataset = build_dataset(item, report)
        if item.dataset is None:
            continue
        infos = check_files(item, report)
        check_labels(item, infos, max_images, report)
    splits = LOADER_SPLITS if split == 'all' else (split, )
    reference = check_splits(cfg, items, splits, report)
    if reference is not None:
        check_coverage(items, reference, report)
    print_summary(items, reference, notes, report)
    return 1 if report.errors else 0


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
    sampled = [s for s in LOADER_SPLITS
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


