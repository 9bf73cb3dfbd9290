# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The main job at CI size: a tiny world and a few iterations, through the
real tools, with the committed toy CLIP."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

from mmseg_zegot.models.utils.zero_shot_targets import map_labels
from mmseg_zegot.utils import load_config
from projects.toy_world.toy_world import generate_world

PROJECT = Path(__file__).resolve().parents[1]
REPO = PROJECT.parents[1]
KEYS = ('aAcc', 'mIoU', 'mIoU.seen', 'mIoU.unseen', 'hIoU')


@pytest.mark.slow
def test_main_job_at_ci_size(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    result = subprocess.run(
        [sys.executable, str(PROJECT / 'tools' / 'run_benchmark.py'),
         '--work-dir', str(tmp_path), '--num-train', '16', '--num-val', '8',
         '--iters', '2'], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The console: each run with its number and the ETA of all runs, its
    # progress and results; no third-party noise, no echoed config lines.
    console = result.stdout + result.stderr
    for noise in ('pkg_resources', 'MultiScaleDeformableAttention',
                  'Warning', "'mIoU',", 'Loads checkpoint'):
        assert noise not in console, noise
    assert '] [1/3] ZegOT, seed 0\n' in result.stdout
    assert ('] [2/3] dense CLIP (training-free), seed 0 (ETA of all runs: '
            in result.stdout)
    assert '    train 2/2  loss ' in result.stdout
    assert ']   ZegOT: mIoU(seen) ' in result.stdout
    # The full logs are in files.
    zegot = tmp_path / 'star-moon-flower' / 'zegot_toy' / 'seed0'
    assert "'mIoU'," in (zegot / 'train.log').read_text()
    assert 'Iter(test) [1/1]' in (zegot / 'test.log').read_text()
    assert 'Loads checkpoint' in (tmp_path / 'figure.log').read_text()
    table = result.stdout[result.stdout.index('split (unseen)'):]
    for method in ('ZegOT', 'dense CLIP (training-free)',
                   'closed-set FCN (seen only)'):
        assert f'star,moon,flower                 {method}' in table
    runs = list(tmp_path.glob('star-moon-flower/*/seed0/test'))
    assert len(runs) == 3
    for run in runs:
        metrics = json.loads(max(run.rglob('*.json'),
                                 key=lambda p: p.stat().st_mtime).read_text())
        assert all(isinstance(metrics[key], float) for key in KEYS)
    assert (tmp_path / 'zegot_toy_predictions.png').stat().st_size > 10_000


def test_unseen_shapes_never_reach_the_training_labels(tmp_path):
    """Through the toy config's own train pipeline and the segmentor's label
    lookup, no unseen shape is ever a training target."""
    generate_world(str(tmp_path), seed=3, num_train=24, num_val=2)
    cfg = load_config(str(PROJECT / 'configs' / 'zegot_toy.py'))
    init_default_scope('mmseg')
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = str(tmp_path)
    dataset = DATASETS.build(dataset_cfg)
    for key in ('image_encoder', 'text_encoder'):  # no weights are needed
        cfg.model[key].pretrained = None
        cfg.model[key].model_cfg = str(PROJECT / 'assets' / 'toy_clip' /
                                       'toy_clip.json')
    model = MODELS.build(cfg.model)
    unseen = [dataset.metainfo['classes'].index(name)
              for name in dataset.metainfo['unseen_classes']]
    model.train()
    model._use_vocabulary(model.train_classes)
    hidden = 0
    for index in range(len(dataset)):
        gt = dataset[index]['data_samples'].gt_sem_seg.data
        targets = map_labels(gt, model.label_map, ignore_index=255,
                             unlabeled_index=model.unlabeled_index)
        was_unseen = torch.from_numpy(np.isin(gt.numpy(), unseen))
        hidden += int(was_unseen.sum())
        assert (targets[was_unseen] == 255).all()
        kept = targets[~was_unseen]
        assert ((kept < len(model.train_classes)) | (kept == 255)).all()
    assert hidden > 0  # the world does show unseen shapes
