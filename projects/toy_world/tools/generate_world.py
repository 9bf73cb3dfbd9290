# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Write the procedural toy world in PASCAL VOC's folder layout.

Images are PNGs in ``JPEGImages/`` (read them with ``img_suffix='.png'``),
labels VOC-style PNGs in ``SegmentationClass/`` (0 background, k the k-th
class of ``world.json``'s ``classes``, 255 object outlines; read with
``reduce_zero_label=True``), and the split lists in
``ImageSets/Segmentation/``. The same seed gives byte-identical files. See
:mod:`projects.toy_world.toy_world.world`.

Example::

    python projects/toy_world/tools/generate_world.py --out-dir data/toy_world
"""
import argparse
import os.path as osp
import time

import _bootstrap_path  # noqa: F401

from projects.toy_world.toy_world import world as toy_world


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate the toy zero-shot segmentation world.')
    parser.add_argument('--out-dir', default='data/toy_world',
                        help='data root to write')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=2000)
    parser.add_argument('--num-val', type=int, default=500)
    parser.add_argument('--size', type=int, nargs='+', default=[64],
                        help='image size: S (square) or H W')
    parser.add_argument('--categories', nargs='+', default=None,
                        help='category subset, in label order; default all: '
                        + ' '.join(toy_world.CLASS_NAMES))
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    if len(args.size) not in (1, 2) or min(args.size) < 16:
        parser.error('--size takes S or H W, each at least 16')
    return args


def main(argv=None):
    args = parse_args(argv)
    size = tuple(args.size) * (3 - len(args.size))
    start = time.perf_counter()
    info = toy_world.generate_world(
        args.out_dir, seed=args.seed, num_train=args.num_train,
        num_val=args.num_val, size=size, categories=args.categories,
        progress=not args.no_progress)
    print(f'Toy world ({len(info["classes"])} classes: '
          f'{", ".join(info["classes"])}; {args.num_train} train + '
          f'{args.num_val} val images of {size[0]}x{size[1]}, seed '
          f'{args.seed}) written to {osp.abspath(args.out_dir)} in '
          f'{time.perf_counter() - start:.1f}s')
    return info


if __name__ == '__main__':
    main()
