# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Smoke + correctness run of every side-by-side benchmark at its CPU-sized
shape, one timed round: each must exit 0 (all its correctness checks pass)
and report its ratios. Timings themselves are never asserted."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

RUNS = {
    'solver.py': (['--prompts', '4'], [
        'ratio forward: reference loop / ours (equal iterations)',
        'ratio forward: POT / ours', 'saved for backward, reference loop',
        'accuracy vs iterations']),
    'text_encoder.py': (['--images', '1'], [
        'ratio voc encode: 77-token / truncated time',
        'ratio coco-stuff encode: 77-token / truncated peak memory',
        'ratio inference: recomputed (77 tokens, published) / cached',
        'ratio inference, long runs: recomputed (77 tokens) / warm cache']),
    'head.py': ([], [
        'ratio train step: reference-style, equal iterations / ours',
        'ratio inference: reference-style, equal iterations / ours']),
    'losses.py': ([], [
        'ratio train step: autograd / ours time',
        'ratio train step: autograd / ours peak memory']),
    'cpu_memory.py': ([], ['ratio train step: default / kept time']),
    'model.py': (['--batch', '2', '--images', '1'], [
        'train step fp32: iterations/s', 'head share of the image encoder',
        'ratio slide inference: mmseg / ours']),
}


@pytest.mark.slow
@pytest.mark.parametrize('script', list(RUNS))
def test_benchmark_runs_and_checks_pass(script):
    extra, expected = RUNS[script]
    result = subprocess.run(
        [sys.executable, str(REPO / 'benchmarks' / script), '--small',
         '--repeats', '1', '--device', 'cpu', *extra], cwd=REPO,
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert 'all correctness checks passed' in result.stdout
    for line in expected:
        assert line in result.stdout, line


@pytest.mark.slow
def test_ot_grad_train_step_runs_and_forward_losses_agree():
    result = subprocess.run(
        [sys.executable, str(REPO / 'benchmarks' / 'ot_grad_train_step.py'),
         '--size', '32', '--batch', '2', '--repeats', '1'], cwd=REPO,
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert 'forward losses identical in both modes: OK' in result.stdout
    assert 'unrolled / detach: time x' in result.stdout
