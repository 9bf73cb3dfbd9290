# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The time estimates the long toy jobs print."""
import pytest

from projects.toy_world.toy_world import benchmark as run_benchmark
from projects.toy_world.toy_world import pretrain as pretrain_clip


@pytest.mark.parametrize('elapsed,done,total,expected', [
    (30.0, 100, 2000, '0:09:30'),  # 1900 steps at 0.3 s
    (1.0, 3, 3, '0:00:00'),
    (7200.0, 1, 2, '2:00:00'),
])
def test_pretraining_eta(elapsed, done, total, expected):
    assert pretrain_clip.eta(elapsed, done, total) == expected


def test_benchmark_eta_uses_each_methods_mean():
    assert run_benchmark.eta({}, ['ZegOT', 'dense']) == ''
    durations = {'ZegOT': [100.0, 140.0], 'dense': [10.0]}
    # 120 (ZegOT mean) + 10 (dense) + 250 / 3 (mean of all, for 'fcn').
    left = (120 + 10 + 250 / 3) / 60
    assert run_benchmark.eta(durations, ['ZegOT', 'dense', 'fcn']) == (
        f' (ETA of all runs: {left:.1f} min)')


TRAIN_LINE = (
    '12/03 10:35:07 - mmengine - INFO - Iter(train) [  50/2000]  base_lr: '
    '1.0000e-10 lr: 1.0000e-09  eta: 0:01:10  time: 5.3117  data_time: '
    '0.0134  loss: 154.1602  decode.loss_focal: 71.4941')


@pytest.mark.parametrize('line,expected', [
    (TRAIN_LINE, '    train 50/2000  loss 154.1602  eta 0:01:10'),
    ('12/03 10:35:23 - mmengine - INFO - Iter(test) [ 40/300]    eta: '
     '0:00:09  time: 0.2', '    test 40/300  eta 0:00:09'),
    # The final metric record, echoed config lines and warnings: log only.
    ('12/03 10:35:23 - mmengine - INFO - Iter(test) [1/1]    aAcc: 0.4300  '
     'mIoU: 0.1900  hIoU: 0.0000  data_time: 0.0083  time: 3.2169', None),
    ("            'mIoU',", None),
    ("    val_evaluator = dict(iou_metrics=['mIoU'], type='ZeroShotIoUMetric')",
     None),
    ('/x/mmengine/utils/package_utils.py:17: UserWarning: pkg_resources is '
     'deprecated as an API.', None),
])
def test_benchmark_console_shows_progress_lines_only(line, expected):
    assert run_benchmark.progress_line(line) == expected
