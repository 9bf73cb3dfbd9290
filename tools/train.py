# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Train a segmentor with MMEngine's runner (mmseg's ``tools/train.py``)."""
import argparse
import importlib.util
import logging
import os
import os.path as osp

import _bootstrap_path  # noqa: F401
from mmengine.config import DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner
from mmseg.registry import RUNNERS

import mmseg_zegot  # noqa: F401  (registers components before the config)
import mmseg_zegot.safe_loading  # noqa: F401  (opt-in: weights-only loading)
from mmseg_zegot.utils import load_config, resolve_resume, warn_unsafe_runtime
from mmseg_zegot.utils.dist import (
    has_accelerator,
    setup_cpu_distributed,
    shutdown_distributed,
)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir automatically '
        '(also for configs that set load_from)')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--tensorboard',
        action='store_true',
        default=False,
        help='also log to TensorBoard (same as --cfg-options '
        'tensorboard=True)')
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
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_amp(cfg) -> None:
    """Switch ``cfg.optim_wrapper`` to ``AmpOptimWrapper`` (as mmseg does).

    MMEngine's ``AmpOptimWrapper`` needs a GPU (or NPU/MLU/MUSA): it scales
    the loss with CUDA's ``GradScaler`` and asserts a device at build time.
    On a CPU-only machine ``--amp`` is refused here, before any data or
    weights are loaded, instead of failing with that assertion.
    """
    if not has_accelerator():
        raise ValueError(
            '`--amp` needs a GPU (MMEngine\'s AmpOptimWrapper scales the '
            'loss with CUDA\'s GradScaler) and none was found: drop `--amp` '
            'to train in float32 on the CPU.')
    optim_wrapper = cfg.optim_wrapper.type
    if optim_wrapper == 'AmpOptimWrapper':
        print_log(
            'AMP training is already enabled in your config.',
            logger='current',
            level=logging.WARNING)
        return
    if optim_wrapper != 'OptimWrapper':
        raise ValueError(
            '`--amp` needs `optim_wrapper.type` to be `OptimWrapper`, got '
            f'{optim_wrapper!r}; set AmpOptimWrapper in the config instead.')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def enable_tensorboard(cfg) -> None:
    """Add a ``TensorboardVisBackend`` to ``cfg.visualizer.vis_backends``
    (once), so the runner's visualizer also writes TensorBoard events."""
    if importlib.util.find_spec('tensorboard') is None:
        raise ValueError(
            '`tensorboard=True` / `--tensorboard` needs the tensorboard '
            'package: `pip install tensorboard`, or switch it off.')
    visualizer = cfg.get('visualizer', None)
    if visualizer is None:
        raise ValueError(
            '`tensorboard=True` / `--tensorboard` needs a `visualizer` in the '
            "config, e.g. the one of mmseg's `_base_/default_runtime.py`.")
    backends = list(visualizer.get('vis_backends', None) or [])
    if not any(backend.get('type') == 'TensorboardVisBackend'
               for backend in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    visualizer.vis_backends = backends


def run_train(cfg) -> None:
    """Build the runner (``runner_type`` if the config names one) and
    train; the runner lives only here."""
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.train()


def main():
    args = parse_args()
    cfg = load_config(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        enable_amp(cfg)
    cfg.resume = args.resume
    resolve_resume(cfg)
    if args.tensorboard or cfg.get('tensorboard', False):
        enable_tensorboard(cfg)
    warn_unsafe_runtime(cfg)

    setup_cpu_distributed(cfg)  # torchrun without a GPU (gloo)
    run_train(cfg)
    shutdown_distributed()  # the runner is gone: the group can be freed


if __name__ == '__main__':
    main()
