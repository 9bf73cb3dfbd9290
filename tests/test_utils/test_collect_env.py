# Copyright (c) mmseg_zegot contributors. All rights reserved.
import subprocess
import sys

from mmseg_zegot.utils.collect_env import installed_versions, known_problems

GOOD = {
    'torch': '2.14.1',
    'torchvision': '0.29.1',
    'mmengine': '0.10.7',
    'mmcv': '2.1.0',
    'mmsegmentation': '1.2.2',
    'open_clip_torch': '3.3.0'
}


def test_pinned_set_has_no_known_problem():
    assert known_problems(GOOD) == []
    assert known_problems(installed_versions()) == []


def test_bad_combinations_are_reported_with_fix():
    problems = known_problems({**GOOD, 'mmcv': '2.2.0'})
    assert len(problems) == 1 and 'mmcv 2.2.0' in problems[0]
    assert '<2.2.0' in problems[0]
    problems = known_problems({**GOOD, 'torchvision': None})
    assert any('torchvision is not installed' in p for p in problems)
    problems = known_problems({**GOOD, 'torch': '2.14.1+cpu'})
    assert any('CPU-only build' in p for p in problems)
    assert known_problems({**GOOD, 'mmsegmentation': '1.3.0'})


def test_check_env_prints_the_stack():
    result = subprocess.run(
        [sys.executable, '-m', 'mmseg_zegot.check_env'],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for key in ('PyTorch', 'CUDA available', 'MMCV', 'MMEngine',
                'MMSegmentation', 'open_clip', 'mmseg_zegot'):
        assert f'\n{key}: ' in '\n' + result.stdout
    assert 'fallback for mmcv.ops' in result.stdout
