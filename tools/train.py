# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Train a segmentor with MMEngine's runner (mmseg's ``tools/train.py``)."""
import argparse
import os
import os.path as osp

import _bootstrap_path  # noqa: F401
from mmengine.config import DictAction
from mmengine.runner import Runner
from mmseg.registry import RUNNERS

import mmseg_zegot  # noqa: F401  (registers components before the config)
import mmseg_zegot.safe_loading  # noqa: F401  (opt-in: weights-only loading)
from mmseg_zegot.utils import load_config, resolve_resume, warn_unsafe_runtime
from mmseg_zegot.utils.config import enable_amp, enable_tensorboard
from mmseg_zegot.utils.cpu_memory import keep_freed_memory_on_cpu
from mmseg_zegot.utils.dist import setup_cpu_distributed, shutdown_distributed


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
