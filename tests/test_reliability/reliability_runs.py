# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The shipped VOC config shrunk to a CPU run of a few seconds through
``tools/train.py``: a tiny CLIP, a tiny VOC-layout dataset, 32 px crops."""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import TINY_CLIP_CFG

from mmseg_zegot.models.utils import build_clip

REPO = Path(__file__).resolve().parents[2]
CONFIG = 'configs/zegot/zegot_vitb16_voc.py'
TRAIN_SETS = ('train_dataloader.dataset.datasets.0',
              'train_dataloader.dataset.datasets.1')
#: Environment of the runs: one thread, and MKL's conditional numerical
#: reproducibility, so that a computation gives the same bits whatever the
#: memory alignment of its inputs (MKL picks kernels by alignment).
RUN_ENV = dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               MKL_CBWR='COMPATIBLE')


def write_tiny_clip(folder: Path):
    """A tiny CLIP's JSON config and weights; returns both paths."""
    torch.manual_seed(0)
    torch.save(build_clip('tiny', TINY_CLIP_CFG).state_dict(),
               folder / 'clip.pth')
    (folder / 'clip.json').write_text(json.dumps(TINY_CLIP_CFG))
    return folder / 'clip.json', folder / 'clip.pth'


def tiny_options(data_root, clip, max_iters: int, warmup: int = 2):
    """``--cfg-options`` values: every dataset at ``data_root``, 32 px
    crops, a 2-tap tiny CLIP, batch 2, no workers, an explicit schedule
    (``warmup`` linear iterations, then poly to ``max_iters``)."""
    clip_cfg, clip_weights = clip
    options = [
        f'train_cfg.max_iters={max_iters}',
        f'param_scheduler.0.end={warmup}',
        f'param_scheduler.1.begin={warmup}',
        f'param_scheduler.1.end={max_iters}',
        'train_dataloader.batch_size=2',
        'model.data_preprocessor.size=(32,32)',
        'model.test_cfg.crop_size=(32,32)',
        'model.test_cfg.stride=(21,21)',
        'model.text_encoder.prompt_length=4',
        'model.image_encoder.out_indices=(0,1)',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.save_best=None',
        'randomness.seed=0',
    ]
    for tower in ('image_encoder', 'text_encoder'):
        options += [f'model.{tower}.model_name=tiny',
                    f'model.{tower}.model_cfg={clip_cfg}',
                    f'model.{tower}.pretrained={clip_weights}',
                    f'model.{tower}.quick_gelu=False']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.num_workers=0',
                    f'{loader}.persistent_workers=False']
    for prefix in TRAIN_SETS:
        options += [f'{prefix}.data_root={data_root}',
                    f'{prefix}.pipeline.2.scale=(48,40)',
                    f'{prefix}.pipeline.3.crop_size=(32,32)']
    for loader in ('val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={data_root}',
                    f'{loader}.dataset.pipeline.1.scale=(48,40)']
    return options


def start_train(work_dir, options, *args, log=None) -> subprocess.Popen:
    """Start ``tools/train.py CONFIG --work-dir WORK_DIR`` as a user does
    (no PYTHONPATH, torch's default weights-only loading), in
    :data:`RUN_ENV`; output to the file ``log`` (default: WORK_DIR.log)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')}
    env.update(RUN_ENV)
    log = Path(log or f'{work_dir}.log')
    with open(log, 'w') as stream:
        return subprocess.Popen(
            [sys.executable, str(REPO / 'tools' / 'train.py'), CONFIG,
             '--work-dir', str(work_dir), *map(str, args),
             '--cfg-options', *options],
            cwd=REPO, env=env, stdout=stream, stderr=subprocess.STDOUT)


def train(work_dir, options, *args, check: bool = True):
    """Run :func:`start_train` to the end; returns (exit code, log text)."""
    process = start_train(work_dir, options, *args)
    code = process.wait(timeout=600)
    log = Path(f'{work_dir}.log').read_text()
    if check:
        assert code == 0, log[-6000:]
    return code, log
