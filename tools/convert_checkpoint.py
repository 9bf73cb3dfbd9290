# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Convert a trusted checkpoint into one that loads with ``weights_only=True``.

    python tools/convert_checkpoint.py --trust IN.pth OUT.pth

Checkpoints written by other MMEngine code bases hold numpy arrays and
``HistoryBuffer`` objects, which only full unpickling restores, and full
unpickling can run code from the file. Only convert files whose origin you
trust: ``--trust`` is the explicit opt-in to unpickle ``IN.pth`` fully, once.
"""
import argparse

import _bootstrap_path  # noqa: F401
import torch
from mmengine.logging import print_log

from mmseg_zegot.utils import (
    UnsafeCheckpointError,
    atomic_torch_save,
    load_checkpoint_safely,
    to_plain,
)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='checkpoint to convert')
    parser.add_argument('dst', help='where to write the plain checkpoint')
    parser.add_argument(
        '--trust',
        action='store_true',
        help='allow full unpickling of SRC (it can run code from the file: '
        'only for files from a source you trust)')
    return parser.parse_args()


def main():
    args = parse_args()
    try:
        checkpoint = load_checkpoint_safely(args.src, map_location='cpu')
        print_log(f'{args.src} is already a plain checkpoint.',
                  logger='current')
    except UnsafeCheckpointError:
        if not args.trust:
            raise SystemExit(
                f'{args.src} needs full unpickling, which can run code from '
                'the file. Re-run with --trust if you trust its source.'
            ) from None
        checkpoint = torch.load(
            args.src, map_location='cpu', weights_only=False)
    atomic_torch_save(to_plain(checkpoint), args.dst)
    load_checkpoint_safely(args.dst, map_location='cpu')
    print_log(f'Wrote {args.dst} (loads with weights_only=True).',
              logger='current')


if __name__ == '__main__':
    main()
