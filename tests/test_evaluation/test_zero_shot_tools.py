# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The zero-shot dataset, label transform and metric through the stock
tools: training with ``save_best='hIoU'`` and ``tools/test.py --out``."""
import json
from pathlib import Path

import numpy as np
from conftest import make_voc_dataset, run_tool
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / 'tests' / 'data' / 'configs' / 'tiny_fcn_voc.py'

CONFIG = f"""
_base_ = [{str(BASE)!r}]
custom_imports = dict(imports=['mmseg_zegot'], allow_failed_imports=False)
model = dict(decode_head=dict(num_classes=20))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='ZegOTZeroShotLabels', zero_shot_split='voc'),
    dict(type='RandomCrop', crop_size=(32, 32)),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    dataset=dict(type='ZegOTPascalVOC20Dataset', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type='ZegOTPascalVOC20Dataset'))
test_dataloader = val_dataloader
val_evaluator = dict(type='ZeroShotIoUMetric')
test_evaluator = val_evaluator
train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(
    checkpoint=dict(interval=100, save_best='hIoU', rule='greater'))
"""


def test_save_best_hiou_and_test_out(tmp_path):
    data_root = make_voc_dataset(tmp_path / 'voc', num_train=2, num_val=2)
    config = tmp_path / 'zero_shot_fcn_voc.py'
    config.write_text(CONFIG)
    options = [
        '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}'
    ]
    work_dir = tmp_path / 'work'
    out = run_tool('train.py', config, '--work-dir', work_dir, *options)
    assert "zero-shot split 'voc'" in out and 'tvmonitor  | unseen |' in out
    best = list(work_dir.glob('best_hIoU_iter_2.pth'))
    assert best, out[-3000:]

    test_dir, out_dir = tmp_path / 'test', tmp_path / 'out'
    run_tool('test.py', config, best[0], '--work-dir', test_dir, '--out',
             out_dir, *options)
    metrics = json.loads(next(test_dir.rglob('*.json')).read_text())
    for key in ('aAcc', 'mIoU', 'mIoU.seen', 'mIoU.unseen', 'hIoU'):
        assert 0.0 <= metrics[key] <= 100.0, key
    val_names = (Path(data_root) / 'ImageSets/Segmentation/val.txt'
                 ).read_text().split()
    assert sorted(p.stem for p in out_dir.glob('*.png')) == sorted(val_names)
    # Predictions are saved in the label files' index space (VOC: 1..20).
    saved = np.array(Image.open(out_dir / f'{val_names[0]}.png'))
    assert saved.shape == (40, 48) and 1 <= saved.min() <= saved.max() <= 20
