# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Test (and evaluate) a segmentor checkpoint (mmseg's ``tools/test.py``)."""
import argparse
import os
import os.path as osp

import _bootstrap_path  # noqa: F401
from mmengine.config import DictAction
from mmengine.runner import Runner

import mmseg_zegot  # noqa: F401  (registers components before the config)
import mmseg_zegot.safe_loading  # noqa: F401  (opt-in: weights-only loading)
from mmseg_zegot.utils import load_config, load_segmentor_checkpoint
from mmseg_zegot.utils.cpu_memory import keep_freed_memory_on_cpu
from mmseg_zegot.utils.dist import (
    setup_cpu_distributed,
    shutdown_distributed,
)


def parse_args():
    parser = argparse.ArgumentParser(
        description='MMSeg test (and eval) a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help=('if specified, the evaluation metric results will be dumped'
              'into the directory as json'))
    parser.add_argument(
        '--out',
        type=str,
        help='The directory to save output prediction for offline evaluation')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where a picture of every test prediction is '
        'written: <image stem>_overlay.png, the image blended with the '
        'predicted classes and a legend of their names')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--tta', action='store_true', help='Test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg, args):
    """Turn on drawing in the config's ``VisualizationHook`` (``--show``)."""
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise ValueError(
            '`--show` needs a VisualizationHook: add '
            "`visualization=dict(type='SegVisualizationHook')` to "
            '`default_hooks` in the config.')
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    visualization_hook['show'] = True
    visualization_hook['wait_time'] = args.wait_time


def add_show_dir_hook(cfg, show_dir):
    """Write a prediction picture per test image into ``show_dir``
    (``ZegOTShowDirHook``: overlay and legend of class names)."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    hooks.append(dict(type='ZegOTShowDirHook', out_dir=show_dir))
    cfg.custom_hooks = hooks


def run_test(cfg, checkpoint: str) -> None:
    """Build the runner, load ``checkpoint`` strictly and test; the runner
    lives only here."""
    runner = Runner.from_cfg(cfg)
    load_segmentor_checkpoint(runner.model, checkpoint)
    runner.test()


def main():
    args = parse_args()
    keep_freed_memory_on_cpu()  # CPU runs: no page faults on reuse
    cfg = load_config(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    # Loaded below by load_segmentor_checkpoint, not by the runner, which
    # loads with strict=False and reads only .pth files: full and published
    # (.pth / .safetensors) checkpoints alike load strictly, weights-only.
    cfg.load_from = None
    cfg.resume = False

    if args.show:
        trigger_visualization_hook(cfg, args)
    if args.show_dir:
        add_show_dir_hook(cfg, args.show_dir)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ValueError('`--tta` needs `tta_model` and `tta_pipeline` '
                             'in the config.')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True

    setup_cpu_distributed(cfg)  # torchrun without a GPU (gloo)
    run_test(cfg, args.checkpoint)
    shutdown_distributed()  # the runner is gone: the group can be freed


if __name__ == '__main__':
    main()
