# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Segment images with any class vocabulary and draw the predictions.

    python tools/demo.py IMG_OR_DIR [IMG_OR_DIR ...] --config CFG \\
        --checkpoint CKPT [--classes "cat,dog,grass" | --classes-file F] \\
        [--out DIR] [--device D] [--opacity A] [--cfg-options ...]

For each image writes ``<stem>_overlay.png`` (the image blended with the
predicted classes, and a legend of the classes present) and
``<stem>_label.png`` (the label map: pixel value k = the k-th class name;
uint8, or uint16 beyond 255 classes) into ``--out``. Without ``--classes``
or ``--classes-file`` the config's classes are used.
"""
import argparse

import _bootstrap_path  # noqa: F401
from mmengine.config import DictAction
from mmengine.logging import print_log

import mmseg_zegot  # noqa: F401  (registers components before the config)
import mmseg_zegot.safe_loading  # noqa: F401  (opt-in: weights-only loading)
from mmseg_zegot.apis import ZegOTInferencer, check_vocabulary
from mmseg_zegot.utils import load_config
from mmseg_zegot.utils.cpu_memory import keep_freed_memory_on_cpu


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('inputs', nargs='+',
                        help='image files and/or folders of images')
    parser.add_argument('--config', required=True, help='ZegOT config file')
    parser.add_argument('--checkpoint', required=True,
                        help='checkpoint (training or published)')
    vocabulary = parser.add_mutually_exclusive_group()
    vocabulary.add_argument(
        '--classes', help='comma-separated class names, e.g. "cat,dog,grass"')
    vocabulary.add_argument(
        '--classes-file',
        help='text file with one class name per line (blank lines skipped)')
    parser.add_argument('--out', default='work_dirs/demo',
                        help='folder for the pictures (default: %(default)s)')
    parser.add_argument('--device', default=None,
                        help='e.g. cpu or cuda:0 (default: cuda if available)')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='weight of the class colours in [0, 1] '
                        '(default: %(default)s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, as for tools/test.py (e.g. '
        'the CLIP file of a published checkpoint: '
        'model.image_encoder.pretrained=... '
        'model.text_encoder.pretrained=...)')
    args = parser.parse_args()
    args.vocabulary = None
    try:
        if args.classes is not None:
            args.vocabulary = check_vocabulary(
                [name.strip() for name in args.classes.split(',')],
                '--classes')
        elif args.classes_file is not None:
            # utf-8-sig: a byte-order mark (Windows editors) is not a name.
            with open(args.classes_file, encoding='utf-8-sig') as file:
                names = [line.strip() for line in file if line.strip()]
            args.vocabulary = check_vocabulary(
                names, f'--classes-file {args.classes_file}')
    except (OSError, ValueError) as error:
        parser.error(str(error))
    if not 0.0 <= args.opacity <= 1.0:
        parser.error(f'--opacity must be in [0, 1], got {args.opacity}')
    return args


def main():
    args = parse_args()
    keep_freed_memory_on_cpu(args.device)  # CPU runs: no page faults on reuse
    cfg = load_config(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    inferencer = ZegOTInferencer(cfg, args.checkpoint, device=args.device)
    results = inferencer(args.inputs, classes=args.vocabulary,
                         out_dir=args.out, opacity=args.opacity)
    names = results[0]['classes']
    print_log(f'Segmented {len(results)} image(s) with {len(names)} classes '
              f'({", ".join(names)}); pictures in {args.out}.',
              logger='current')


if __name__ == '__main__':
    main()
