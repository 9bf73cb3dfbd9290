# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The TensorBoard switch of tools/train.py: `--tensorboard` or the config
key `tensorboard=True` add a TensorboardVisBackend, whose events hold the
same scalars as MMEngine's local scalars.json."""
import json

import pytest
from conftest import REPO, make_voc_dataset, run_tool
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

from mmseg_zegot.utils import load_config
from mmseg_zegot.utils.config import enable_tensorboard

CONFIG = REPO / 'tests' / 'data' / 'configs' / 'tiny_fcn_voc.py'


@pytest.fixture(scope='module')
def voc_root(tmp_path_factory):
    return make_voc_dataset(tmp_path_factory.mktemp('voc'), num_train=4)


def train_options(data_root):
    return [f'{loader}.dataset.data_root={data_root}'
            for loader in ('train_dataloader', 'val_dataloader',
                           'test_dataloader')] + ['train_cfg.max_iters=2']


def scalars(work_dir):
    """({tag: [(step, value)]} of the events file, of scalars.json)."""
    [events] = work_dir.glob('*/vis_data/events.out.tfevents.*')
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    from_events = {
        tag: [(event.step, event.value)
              for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()['scalars']
    }
    from_json = {}
    [local] = work_dir.glob('*/vis_data/scalars.json')
    for line in local.read_text().splitlines():
        record = json.loads(line)
        step = record.pop('step')
        for tag, value in record.items():
            from_json.setdefault(tag, []).append((step, value))
    return from_events, from_json


@pytest.mark.parametrize('switch', [['--tensorboard'],
                                    ['--cfg-options', 'tensorboard=True']])
def test_tensorboard_events_hold_the_training_scalars(voc_root, tmp_path,
                                                      switch):
    options = train_options(voc_root)
    if switch[0] == '--cfg-options':
        options = [*switch[1:], *options]
        switch = []
    run_tool('train.py', CONFIG, '--work-dir', tmp_path, *switch,
             '--cfg-options', *options)
    from_events, from_json = scalars(tmp_path)
    assert {'loss', 'lr', 'mIoU'} <= set(from_events)
    assert [step for step, _ in from_events['loss']] == [1, 2]
    for tag in ('loss', 'lr', 'mIoU'):  # events store float32
        steps, values = zip(*from_events[tag])
        json_steps, json_values = zip(*from_json[tag])
        assert steps == json_steps, tag
        assert values == pytest.approx(json_values, rel=1e-6), tag


def test_off_by_default_and_added_once():
    cfg = load_config(str(CONFIG))
    assert cfg.tensorboard is False
    assert [b['type'] for b in cfg.visualizer.vis_backends] == [
        'LocalVisBackend']
    enable_tensorboard(cfg)
    enable_tensorboard(cfg)
    assert [b['type'] for b in cfg.visualizer.vis_backends] == [
        'LocalVisBackend', 'TensorboardVisBackend']
