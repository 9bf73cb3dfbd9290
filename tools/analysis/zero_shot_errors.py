# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Which kind of error costs a zero-shot model its unseen mIoU.

Runs a ZegOT checkpoint over the config's test set (as ``tools/test.py``
does, with its calibration and inference mode) and reports, besides mIoU of
the seen and unseen classes (see
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

import torch
import torch.nn.functional as F
from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from mmseg.registry import MODELS  # noqa: E402

from mmseg_zegot.evaluation.zero_shot_errors import (  # noqa: E402
    accumulate,
    accumulate_alignment,
    alignment_report,
    new_alignment_counts,
    new_counts,
    summarize,
)
from mmseg_zegot.utils import (  # noqa: E402
    load_config,
    load_segmentor_checkpoint,
)


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


def analyse(cfg, checkpoint: str) -> dict:
    """The error report of ``checkpoint`` on ``cfg``'s test set."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    if not hasattr(model, 'seen_classes'):
        raise SystemExit(
            f'{type(model).__name__} has no seen/unseen classes: this tool '
            'analyses ZegOTSegmentor configs (model.type=ZegOTSegmentor).')
    load_segmentor_checkpoint(model, checkpoint)
    model.eval()
    names = tuple(model.test_classes)
    seen_mask = torch.tensor([name in model.seen_classes for name in names])
    counts = new_counts(len(names))
    alignment, text = new_alignment_counts(len(names)), []

    def record_alignment(module, args, output):
        # args[0] is [g * t ; t], (B, K, N, 2C); output W_ga of it, (B, K,
        # N, C). Per class: the mean over the N prompts of unit vectors.
        channels = output.size(-1)
        text[:] = [F.normalize(args[0][0, ..., channels:], dim=-1).mean(1)]
        accumulate_alignment(alignment,
                             F.normalize(output, dim=-1).mean(2), seen_mask)

    align = getattr(model.decode_head, 'text_align', None)
    hook = None
    if align is not None and seen_mask.any() and not seen_mask.all():
        hook = align.register_forward_hook(record_alignment)
    loader = Runner.build_dataloader(cfg.test_dataloader)
    with torch.no_grad():
        for data in loader:
            for sample in model.test_step(data):
                accumulate(counts, sample.seg_logits.data,
                           sample.gt_sem_seg.data[0], seen_mask,
                           loader.dataset.ignore_index)
    report = summarize(counts, names, seen_mask)
    if hook is not None:
        hook.remove()
        report['alignment'] = alignment_report(alignment, text[0], names,
                                               seen_mask)
    report['classes'] = list(names)
    report['unseen_classes'] = [n for n, s in zip(names, seen_mask) if not s]
    return report


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
    report = analyse(cfg, args.checkpoint)
    print_report(report)
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(report, file, indent=1)
        print(f'Report: {args.out}')


if __name__ == '__main__':
    main()
