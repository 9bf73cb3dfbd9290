# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""End to end through tools/train.py and tools/test.py with a stock mmseg
model: train, test the checkpoint, resume, all under weights_only=True."""
import json
import os.path as osp
from pathlib import Path

import pytest
import torch
from conftest import make_voc_dataset, run_tool

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'tests' / 'data' / 'configs' / 'tiny_fcn_voc.py'


def data_options(data_root, max_iters):
    return [
        '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        f'train_cfg.max_iters={max_iters}'
    ]


@pytest.fixture(scope='module')
def voc_root(tmp_path_factory):
    return make_voc_dataset(tmp_path_factory.mktemp('voc'))


@pytest.fixture(scope='module')
def trained(voc_root, tmp_path_factory):
    """A 4-iteration run (checkpoints at 2 and 4) and a 6-iteration run."""
    short = tmp_path_factory.mktemp('short')
    full = tmp_path_factory.mktemp('full')
    run_tool('train.py', CONFIG, '--work-dir', short,
             *data_options(voc_root, 4))
    run_tool('train.py', CONFIG, '--work-dir', full,
             *data_options(voc_root, 6))
    return short, full


def test_checkpoints_are_weights_only(trained):
    short, _ = trained
    for name in ('iter_2.pth', 'iter_4.pth'):
        checkpoint = torch.load(short / name, weights_only=True)
        assert checkpoint['meta']['iter'] == int(name[5])
        hub = checkpoint['message_hub']
        assert 'train/lr' in hub['log_scalars']
        assert (short / 'last_checkpoint').read_text().strip().endswith(
            'iter_4.pth')


def test_test_tool_evaluates_checkpoint(trained, voc_root, tmp_path):
    short, _ = trained
    out = run_tool('test.py', CONFIG, short / 'iter_4.pth', '--work-dir',
                   tmp_path, *data_options(voc_root, 4))
    assert 'Load checkpoint from' in out
    results = list(tmp_path.rglob('*.json'))
    assert results, out[-2000:]
    metrics = json.loads(results[0].read_text())
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert 0.0 <= metrics[key] <= 100.0


def test_resume_restores_optimizer_and_scheduler(trained, voc_root):
    short, full = trained
    out = run_tool('train.py', CONFIG, '--work-dir', short, '--resume',
                   *data_options(voc_root, 6))
    assert 'resumed epoch: 0, iter: 4' in out
    resumed = torch.load(short / 'iter_6.pth', weights_only=True)
    reference = torch.load(full / 'iter_6.pth', weights_only=True)
    assert resumed['meta']['iter'] == reference['meta']['iter'] == 6
    steps = {float(s['step']) for s in resumed['optimizer']['state'].values()}
    assert steps == {6.0}
    lrs = [g['lr'] for g in resumed['optimizer']['param_groups']]
    ref_lrs = [g['lr'] for g in reference['optimizer']['param_groups']]
    assert lrs == pytest.approx(ref_lrs)
    assert [s['last_step'] for s in resumed['param_schedulers']] == [
        s['last_step'] for s in reference['param_schedulers']
    ]
    # Same seed, same data order, CPU: the resumed run ends where the
    # uninterrupted one does.
    for key, value in reference['state_dict'].items():
        torch.testing.assert_close(resumed['state_dict'][key], value,
                                   rtol=1e-5, atol=1e-6, msg=key)


def test_load_from_uses_safe_loader(trained, voc_root, tmp_path):
    short, _ = trained
    out = run_tool('train.py', CONFIG, '--work-dir', tmp_path,
                   *data_options(voc_root, 1), f'load_from={short}/iter_2.pth')
    assert 'Load checkpoint from' in out
    assert osp.isfile(tmp_path / 'iter_1.pth')


def test_resume_with_load_from_continues_the_work_folder(trained, voc_root,
                                                         tmp_path):
    """A config with ``load_from`` (as the transductive configs have):
    ``--resume`` starts from ``load_from`` while the work folder is empty,
    then continues from the work folder's latest checkpoint, not from
    ``load_from`` (MMEngine alone would restore ``load_from``'s iteration
    4 and stop)."""
    short, _ = trained
    load_from = f'load_from={short}/iter_4.pth'
    out = run_tool('train.py', CONFIG, '--work-dir', tmp_path, '--resume',
                   *data_options(voc_root, 2), load_from)
    assert 'no checkpoint in' in out and 'at iteration 0' in out
    assert 'resumed epoch' not in out
    assert torch.load(tmp_path / 'iter_2.pth',
                      weights_only=True)['meta']['iter'] == 2
    out = run_tool('train.py', CONFIG, '--work-dir', tmp_path, '--resume',
                   *data_options(voc_root, 4), load_from)
    assert f'continuing from {tmp_path}/iter_2.pth' in out
    assert 'resumed epoch: 0, iter: 2' in out
    assert torch.load(tmp_path / 'iter_4.pth',
                      weights_only=True)['meta']['iter'] == 4
