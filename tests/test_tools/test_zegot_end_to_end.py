# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The shipped ZegOT configs, end to end through tools/train.py and
tools/test.py on tiny generated datasets in each real folder layout, with a
tiny CLIP given through --cfg-options: inductive, then transductive from the
inductive checkpoint (the half-way recipe), checking the zero-shot metric."""
import json
import math
import re

import pytest
import torch
from conftest import TINY_CLIP_CFG, make_layout_dataset, run_tool

from mmseg_zegot.datasets.splits import get_split
from mmseg_zegot.models.utils import build_clip
from mmseg_zegot.utils import load_config

CASES = [('voc', 'zegot_vitb16_voc', 'voc'),
         ('context59', 'zegot_vitb16_context59', 'context59'),
         ('coco_stuff', 'zegot_vitb16_coco-stuff', 'coco-stuff')]
KEYS = ('aAcc', 'mIoU', 'mIoU.seen', 'mIoU.unseen', 'hIoU')


@pytest.fixture(scope='module')
def tiny_clip(tmp_path_factory):
    """A tiny CLIP's config (JSON) and weights (state dict file)."""
    folder = tmp_path_factory.mktemp('clip')
    torch.manual_seed(0)
    torch.save(build_clip('tiny', TINY_CLIP_CFG).state_dict(),
               folder / 'clip.pth')
    (folder / 'clip.json').write_text(json.dumps(TINY_CLIP_CFG))
    return str(folder / 'clip.json'), str(folder / 'clip.pth')


def dataset_paths(dataset, prefix):
    """(option prefix, dataset dict) of every leaf dataset of a loader."""
    if 'datasets' in dataset:
        return [leaf for i, inner in enumerate(dataset['datasets'])
                for leaf in dataset_paths(inner, f'{prefix}.datasets.{i}')]
    return [(prefix, dataset)]


def data_options(config, data_root):
    """--cfg-options pointing every dataset at ``data_root``, small sizes."""
    options = []
    cfg = load_config(config)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.num_workers=0',
                    f'{loader}.persistent_workers=False']
        for prefix, dataset in dataset_paths(cfg[loader].dataset,
                                             f'{loader}.dataset'):
            options.append(f'{prefix}.data_root={data_root}')
            for i, step in enumerate(dataset['pipeline']):
                if 'scale' in step:
                    options.append(f'{prefix}.pipeline.{i}.scale=(48,40)')
                if 'crop_size' in step:
                    options.append(f'{prefix}.pipeline.{i}.crop_size=(32,32)')
    return options


def tiny_options(config, data_root, clip, work_dir, max_iters=2):
    """--cfg-options that shrink a shipped config to a CPU test."""
    clip_cfg, clip_weights = clip
    options = [f'work_dir={work_dir}', f'train_cfg.max_iters={max_iters}',
               f'train_cfg.val_interval={max_iters}',
               f'default_hooks.checkpoint.interval={max_iters}',
               'default_hooks.logger.interval=1',
               'model.data_preprocessor.size=(32,32)',
               'model.test_cfg.crop_size=(32,32)',
               'model.test_cfg.stride=(21,21)',
               'model.text_encoder.prompt_length=4',
               'model.image_encoder.out_indices=(0,1)',
               'env_cfg.dist_cfg.backend=gloo']
    for tower in ('image_encoder', 'text_encoder'):
        options += [f'model.{tower}.model_name=tiny',
                    f'model.{tower}.model_cfg={clip_cfg}',
                    f'model.{tower}.pretrained={clip_weights}',
                    f'model.{tower}.quick_gelu=False']
    return options + data_options(config, data_root) + [
        'train_dataloader.batch_size=2'
    ]


def per_class_iou(log, classes):
    """{class: (IoU or nan, 'seen'|'unseen')} from the metric's table."""
    rows = {}
    for line in log.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) >= 3 and cells[0] in classes:
            split = 'unseen' if 'unseen' in cells else 'seen'
            numbers = [c for c in cells[1:] if re.fullmatch(r'[-\d.]+|nan', c)]
            rows[cells[0]] = (float(numbers[0]), split)
    return rows


def check_metrics(work_dir, log, split_name):
    """The reported numbers exist and agree with the per-class table."""
    results = sorted(work_dir.rglob('*.json'), key=lambda p: p.stat().st_mtime)
    metrics = json.loads(results[-1].read_text())
    for key in KEYS:
        assert isinstance(metrics[key], float), key
    split = get_split(split_name)
    rows = per_class_iou(log, split.classes)
    assert set(rows) == set(split.classes)
    assert {c for c, (_, s) in rows.items() if s == 'unseen'} == set(
        split.unseen)
    means = {}
    for group in ('seen', 'unseen'):
        values = [v for v, s in rows.values() if s == group and not
                  math.isnan(v)]
        means[group] = sum(values) / len(values) if values else math.nan
    for group in ('seen', 'unseen'):
        if math.isnan(means[group]):
            assert math.isnan(metrics[f'mIoU.{group}'])
        else:
            assert metrics[f'mIoU.{group}'] == pytest.approx(
                means[group], abs=0.011)
    seen, unseen = metrics['mIoU.seen'], metrics['mIoU.unseen']
    if seen + unseen > 0:
        assert metrics['hIoU'] == pytest.approx(
            2 * seen * unseen / (seen + unseen), abs=0.011)
    return metrics


@pytest.mark.slow
@pytest.mark.parametrize('layout,name,split_name', CASES)
def test_inductive_then_transductive(layout, name, split_name, tiny_clip,
                                     tmp_path):
    data_root = make_layout_dataset(tmp_path / 'data', layout, num_train=4,
                                    num_val=2)
    inductive = f'configs/zegot/{name}.py'
    work = tmp_path / 'inductive'
    log = run_tool('train.py', inductive,
                   '--cfg-options', *tiny_options(inductive, data_root,
                                                  tiny_clip, work))
    assert 'Saving checkpoint at 2 iterations' in log
    checkpoint = work / 'iter_2.pth'
    log = run_tool('test.py', inductive, checkpoint, '--work-dir',
                   tmp_path / 'test_inductive', '--cfg-options',
                   *tiny_options(inductive, data_root, tiny_clip, work))
    check_metrics(tmp_path / 'test_inductive', log, split_name)

    transductive = f'configs/zegot/{name}_transductive.py'
    work_t = tmp_path / 'transductive'
    log = run_tool('train.py', transductive, '--cfg-options',
                   *tiny_options(transductive, data_root, tiny_clip, work_t),
                   f'load_from={checkpoint}')
    assert f'Load checkpoint from {checkpoint}' in log
    log = run_tool('test.py', transductive, work_t / 'iter_2.pth',
                   '--work-dir', tmp_path / 'test_transductive',
                   '--cfg-options',
                   *tiny_options(transductive, data_root, tiny_clip, work_t))
    check_metrics(tmp_path / 'test_transductive', log, split_name)



@pytest.mark.slow
def test_closed_set_example_with_our_split_and_metric(tmp_path):
    """Mixing example 1: a stock FCN with our split, transform and metric."""
    data_root = make_layout_dataset(tmp_path / 'data', 'voc', num_train=4,
                                    num_val=2)
    config = 'configs/examples/fcn_r50-d8_voc-zero-shot_closed-set.py'
    options = [*data_options(config, data_root), 'train_cfg.max_iters=2',
               'train_cfg.val_interval=2', 'train_dataloader.batch_size=2',
               'default_hooks.checkpoint.interval=2',
               'model.data_preprocessor.size=(32,32)',
               'model.backbone.norm_cfg.type=BN',
               'model.decode_head.norm_cfg.type=BN',
               'model.auxiliary_head.norm_cfg.type=BN',
               # ResNet-18 widths keep the two checkpoints at ~130 MB, not
               # ~600 MB (ResNet-50's), on the CI machine's disk.
               'model.backbone.depth=18', 'model.decode_head.in_channels=512',
               'model.decode_head.channels=32',
               'model.auxiliary_head.in_channels=256',
               'model.auxiliary_head.channels=32',
               'model.pretrained=None']  # no ImageNet download here
    run_tool('train.py', config, '--work-dir', tmp_path / 'work',
             '--cfg-options', *options)
    log = run_tool('test.py', config, tmp_path / 'work' / 'iter_2.pth',
                   '--work-dir', tmp_path / 'test', '--cfg-options', *options)
    check_metrics(tmp_path / 'test', log, 'voc')


@pytest.mark.slow
def test_zegot_on_mmseg_bases_example(tiny_clip, tmp_path):
    """Mixing example 2: ZegOT with mmseg's own runtime and schedule."""
    data_root = make_layout_dataset(tmp_path / 'data', 'voc', num_train=4,
                                    num_val=2)
    config = 'configs/examples/zegot_mmseg-schedule_voc.py'
    options = tiny_options(config, data_root, tiny_clip, tmp_path / 'work')
    log = run_tool('train.py', config, '--cfg-options', *options)
    assert 'ZegOTPlainCheckpointHook' in log  # added by our tools
    log = run_tool('test.py', config, tmp_path / 'work' / 'iter_2.pth',
                   '--work-dir', tmp_path / 'test', '--cfg-options', *options)
    check_metrics(tmp_path / 'test', log, 'voc')
