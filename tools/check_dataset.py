# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Check a prepared dataset against the config that reads it.

    python tools/check_dataset.py CONFIG [--split train|val|test|all]
        [--max-images N] [--cfg-options KEY=VALUE ...]

Every dataset of the config's data loaders is built as the Runner builds it
and checked: its folders and files exist, a sample of its label files holds
class indices of its classes, and every class list of the config agrees
(see :mod:`mmseg_zegot.datasets.checker`). Prints a summary; exits 0 when
every check passes, 1 with the list of errors otherwise. Local files only.
See docs/data_preparation.md.
"""
import argparse
import sys
from typing import Optional, Sequence

import _bootstrap_path  # noqa: F401

import mmseg_zegot  # noqa: F401  (installs the mmcv.ops stand-in mmseg needs)

# isort: split
from mmengine.config import DictAction
from mmengine.registry import init_default_scope

from mmseg_zegot.datasets.checker import LOADER_SPLITS, check_datasets
from mmseg_zegot.utils import load_config


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Check a prepared dataset against a config.')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--split',
        choices=LOADER_SPLITS + ('all', ),
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
    print(f'Checking the datasets of {args.config} (up to {args.max_images} '
          'label files each)')
    return check_datasets(cfg, args.split, args.max_images)


if __name__ == '__main__':
    sys.exit(main())
