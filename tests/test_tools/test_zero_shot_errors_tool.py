# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""tools/analysis/zero_shot_errors.py: its mIoUs equal tools/test.py's."""
import json
import subprocess
import sys

import pytest
from conftest import REPO, run_tool
from test_apis.inference_models import write_tiny_run


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    config, checkpoint, _ = write_tiny_run(
        tmp_path_factory.mktemp('errors'), num_val=4)
    return config, checkpoint


def test_report_matches_the_test_tool(tiny, tmp_path):
    config, checkpoint = tiny
    run_tool('test.py', config, checkpoint, '--work-dir', tmp_path / 'test')
    metrics = json.loads(max((tmp_path / 'test').rglob('*.json'),
                             key=lambda p: p.stat().st_mtime).read_text())
    out = tmp_path / 'errors.json'
    stdout = run_tool('analysis/zero_shot_errors.py', config, checkpoint,
                      '--out', out)
    report = json.loads(out.read_text())
    assert report['mIoU.seen'] == pytest.approx(metrics['mIoU.seen'],
                                                abs=0.01)
    assert report['mIoU.unseen'] == pytest.approx(metrics['mIoU.unseen'],
                                                  abs=0.01)
    assert report['unseen_classes'] == [
        'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor']
    # Restricting the argmax to the present classes can only help.
    assert report['mIoU.unseen.present'] >= report['mIoU.unseen'] - 1e-9
    for row in report['confusion']:
        assert sum(row) == pytest.approx(100, abs=0.2) or sum(row) == 0
    assert 0 <= report['seen_to_unseen'] <= 100
    nearest = report['alignment']['nearest_seen']
    assert sorted(nearest) == report['unseen_classes']
    for near in nearest.values():
        assert near['seen'] not in report['unseen_classes']
        assert -1 <= near['cos'] <= 1 and -1 <= near['cos_text'] <= 1
    for length in report['alignment']['outside_seen_span'].values():
        assert 0 <= length <= 1
    assert 'text alignment' in stdout
    assert 'oracle presence' in stdout and 'confusion' in stdout
    assert 'seen pixels predicted as an unseen class' in stdout


def test_refuses_a_segmentor_without_a_split(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools/analysis/zero_shot_errors.py'),
         'projects/toy_world/configs/closed-set_toy.py', str(tmp_path / 'x.pth')],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert 'analyses ZegOTSegmentor configs' in result.stderr
