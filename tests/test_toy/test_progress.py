# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The time estimates the long toy jobs print."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'tools' / 'toy'))
import pretrain_clip  # noqa: E402
import run_benchmark  # noqa: E402


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
