# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Which kind of error costs a zero-shot model its unseen mIoU.

Runs a ZegOT checkpoint over the config's test set (as ``tools/test.py``
does, with its calibration and inference mode;
:func:`mmseg_zegot.evaluation.error_analysis.analyse_errors`) and reports,
besides mIoU of the seen and unseen classes (see
:mod:`mmseg_zegot.evaluation.zero_shot_errors`):

* the share of unseen-class pixels predicted as a seen class (seen bias),
  and of seen-class pixels predicted as an unseen class (unseen hubs);
* the accuracy on unseen-class pixels with the argmax over the unseen
  classes only (how well unseen classes are told apart);
* the mIoUs when each image's argmax runs over the classes its ground truth
  shows (oracle presence): the rest of the gap is localisation;
* per-class IoUs and the confusion matrix;
* for a head with a learned text alignment (ZegOT's ``W_ga``), where it puts
  each unseen class: its nearest seen class after the alignment and how
  much of it lies outside the span of the seen classes, before and after
  (a mean over the test images, or windows in slide inference).

    python tools/analysis/zero_shot_errors.py CONFIG CHECKPOINT \\
        [--out errors.json] [--cfg-options model.decode_head.seen_bias=0]

``--cfg-options model.decode_head.ensemble_weight=1`` (decoder only) or
``=0`` (OT score path only) looks at one path of the head.
"""
import argparse
import json
import os.path as osp
import sys

from mmengine.config import DictAction

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from mmseg_zegot.evaluation.error_analysis import analyse_errors  # noqa: E402
from mmseg_zegot.utils import load_config  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Error analysis of a zero-shot segmentor on its test '
        'set: seen bias, unseen discrimination, oracle presence.')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', help='write the report as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, as in tools/test.py')
    return parser.parse_args(argv)


def print_report(report: dict) -> None:
    print(f'mIoU(seen) {report["mIoU.seen"]:.1f}  '
          f'mIoU(unseen) {report["mIoU.unseen"]:.1f}')
    print(f'oracle presence: mIoU(seen) {report["mIoU.seen.present"]:.1f}  '
          f'mIoU(unseen) {report["mIoU.unseen.present"]:.1f}')
    print(f'unseen pixels predicted as a seen class: '
          f'{report["unseen_to_seen"]:.1f}%')
    print(f'seen pixels predicted as an unseen class: '
          f'{report["seen_to_unseen"]:.1f}%')
    print(f'unseen pixels right among the unseen classes only: '
          f'{report["unseen_zsl_acc"]:.1f}%')
    names = report['classes']
    width = max(len(n) for n in names) + 2
    if 'alignment' in report:
        print('text alignment: nearest seen class of each unseen one, '
              'cosine after (before) the alignment:')
        for name, near in report['alignment']['nearest_seen'].items():
            print(f'  {name:<{width}}{near["seen"]:<{width}}'
                  f'{near["cos"]:.2f} ({near["cos_text"]:.2f})')
        span = report['alignment']['outside_seen_span']
        print(f'unseen embeddings outside the span of the seen ones: '
              f'{span["text"]:.2f} before, {span["queries"]:.2f} after')
    print('confusion (% of each ground-truth class; * = unseen):')
    print(' ' * width + ''.join(f'{n[:5]:>6}' for n in names))
    for name, row in zip(names, report['confusion']):
        mark = '*' if name in report['unseen_classes'] else ' '
        print(f'{mark}{name:<{width - 1}}' + ''.join(f'{v:6.0f}' for v in row))


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        report = analyse_errors(cfg, args.checkpoint)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    print_report(report)
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(report, file, indent=1)
        print(f'Report: {args.out}')


if __name__ == '__main__':
    main()
