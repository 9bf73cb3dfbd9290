# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Ablations of ZegOT on the embedded toy zero-shot world.

    python projects/toy_world/tools/run_ablations.py     # one training seed
    python projects/toy_world/tools/run_ablations.py --train-seeds 0 1 2

Trains and tests ``projects/toy_world/configs/zegot_toy.py`` with each
component of the method switched off or replaced, through the real
``tools/train.py`` / ``tools/test.py`` and on the same world, split and
seeds as ``run_benchmark.py``, and prints mIoU(seen), mIoU(unseen) and hIoU with
their change from the full model (medians over the training seeds):

* no OT: the uniform plan (``use_ot=False``, MPOT-only vs baseline);
* shallow: one tap, the last layer, instead of four (ZegOT-Shallow);
* N = 1 prompt instead of 4;
* ``ot_grad='unrolled'`` instead of ``'detach'``;
* frozen DLFA projections (CLIP's ``ln_post``/``proj``) instead of learned;
* no decoder (score path only);
* label-255 pixels left out of the losses instead of negatives of every
  class (``ignored_as_negative=False`` on all four losses);
* the probability ensemble (``ensemble='probabilities'``) instead of OTSeg's
  logit-space one, for inference and pseudo-labels;
* contiguous taps: the last half of the blocks (``first_tap = depth // 2``,
  the paper's ∏ from layer n to L with n fixed by that rule; the default
  taps of the 6-layer toy ViT, 2..5, are already contiguous);
* the OT score fed to the decoder (``score_to_decoder=True``).

A Markdown version of the table is written to ``<work-dir>/ablations.md``.
"""
import argparse
import os.path as osp
import statistics
import time

import _bootstrap_path  # noqa: F401

from mmseg_zegot.datasets.splits import get_split
from projects.toy_world.toy_world.benchmark import (
    CONFIGS,
    add_common_args,
    log,
    prepare_world,
    run_method,
    toy_clip_files,
)

CONFIG = f'{CONFIGS}/zegot_toy.py'
#: (name, --cfg-options) of each variant; the first is the full model.
VARIANTS = (
    ('ZegOT (all components)', []),
    ('no OT (uniform plan)', ['model.decode_head.use_ot=False']),
    ('shallow: last tap only', ['model.image_encoder.out_indices=[5]']),
    ('N = 1 prompt', ['model.text_encoder.num_prompts=1']),
    ("ot_grad='unrolled'", ['model.decode_head.ot_grad=unrolled']),
    ('frozen DLFA projections', ['model.decode_head.dlfa_projection=frozen']),
    ('no decoder', ['model.decode_head.decoder=None']),
    ('label 255 left out of the losses', [
        f'model.decode_head.{path}.{i}.ignored_as_negative=False'
        for path in ('loss_decode', 'loss_ot') for i in (0, 1)
    ]),
    ('probability ensemble', ['model.decode_head.ensemble=probabilities']),
    ('contiguous taps 3..5', ['model.image_encoder.out_indices=None',
                              'model.image_encoder.first_tap=3']),
    ('S* into the decoder', ['model.decode_head.score_to_decoder=True']),
)
KEYS = ('mIoU.seen', 'mIoU.unseen', 'hIoU')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, 'work_dirs/toy_ablations')
    parser.add_argument('--only', nargs='+', default=None,
                        help='run only the variants whose names contain '
                        'one of these words (the full model always runs)')
    return parser.parse_args()


def table(rows, seeds) -> str:
    """A Markdown table of medians with the change from the first row."""
    medians = [[statistics.median(run[key] for run in runs) for key in KEYS]
               for _, runs in rows]
    lines = [
        '| variant | mIoU(seen) | mIoU(unseen) | hIoU |',
        '|---|---|---|---|',
    ]
    for (name, _), values in zip(rows, medians):
        cells = [
            f'{value:.1f}' if values is medians[0] else
            f'{value:.1f} ({value - base:+.1f})'
            for value, base in zip(values, medians[0])
        ]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    lines.append(f'\n(medians over training seeds {", ".join(map(str, seeds))}'
                 '; mIoU in %; change from the full model in brackets)')
    return '\n'.join(lines)


def main():
    args = parse_args()
    work_dir = osp.abspath(args.work_dir)
    started = time.time()
    data_root = prepare_world(work_dir, args)
    clip = toy_clip_files(args.clip_dir)
    unseen = tuple(args.unseen or get_split('toy').unseen)
    log(f'Split: unseen = {",".join(unseen)}')
    variants = [
        variant for i, variant in enumerate(VARIANTS)
        if i == 0 or args.only is None
        or any(word in variant[0] for word in args.only)
    ]
    rows = []
    for index, (name, options) in enumerate(variants):
        runs = []
        for seed in args.train_seeds:
            log(f'{name}, seed {seed}')
            work = osp.join(work_dir, f'variant{index}', f'seed{seed}')
            result = run_method(name, CONFIG, True, work, data_root, clip,
                                unseen, seed, args.iters, options)
            runs.append(result['metrics'])
        rows.append((name, runs))
    markdown = table(rows, args.train_seeds)
    print('\n' + markdown + '\n', flush=True)
    with open(osp.join(work_dir, 'ablations.md'), 'w') as file:
        file.write(markdown + '\n')
    log(f'Done in {(time.time() - started) / 60:.1f} min.')


if __name__ == '__main__':
    main()
