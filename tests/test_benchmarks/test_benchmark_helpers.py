# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The measuring helpers of benchmarks/ and tools/analysis/model_stats.py
(:mod:`mmseg_zegot.utils.benchmark`): memory accounting and FLOP formulas
against hand-computed values."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mmseg_zegot.utils.benchmark import (
    Report,
    count_flops,
    peak_memory,
    saved_bytes,
)

REPO = Path(__file__).resolve().parents[2]

MB4 = 1000 * 1000 * 4  # bytes of a float32 (1000, 1000) tensor


def test_cpu_peak_memory_counts_live_tensors():
    def fn():
        a = torch.ones(1000, 1000)
        b = a * 2  # 2 alive
        del a
        c = b + 1  # 2 alive
        d = torch.ones(2000, 1000)  # 4 alive: the peak
        d.add_(1)  # in place: nothing new
        view = d.view(-1)  # a view: nothing new
        return c.sum() + view.sum()

    scalars = 64  # the few bytes of the final sums
    assert 4 * MB4 <= peak_memory(fn, torch.device('cpu')) <= 4 * MB4 + scalars
    outside = torch.ones(1000, 1000)
    # A view of a tensor made before the call is not an allocation.
    peak = peak_memory(lambda: (outside.view(-1) * 2).sum(),
                       torch.device('cpu'))
    assert MB4 <= peak <= MB4 + scalars


def test_saved_bytes_counts_each_storage_once():
    x = torch.ones(1000, 1000, requires_grad=True)
    # x * x saves x twice (one storage); exp saves its output.
    assert saved_bytes(lambda: (x * x).exp()) == 2 * MB4
    with torch.no_grad():
        assert saved_bytes(lambda: (x * x).exp()) == 0


def test_flops_of_attention_kernels_the_counter_lacks():
    b, length, e, heads = 2, 10, 16, 4
    mha = torch.nn.MultiheadAttention(e, heads, batch_first=True).eval()
    x = torch.randn(b, length, e)
    with torch.no_grad():  # the fused inference path
        flops = count_flops(lambda: mha(x, x, x, need_weights=False))
    projections = 2 * b * length * e * 4 * e
    attention = 4 * b * length * length * e
    assert flops == projections + attention
    q = torch.randn(b, heads, length, e // heads, requires_grad=True)
    assert count_flops(lambda: F.scaled_dot_product_attention(q, q, q)) == \
        attention
    out = F.scaled_dot_product_attention(q, q, q)
    assert count_flops(lambda: out.sum().backward()) > 2 * attention


def test_model_stats_on_the_toy_config():
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'analysis' / 'model_stats.py'),
         str(REPO / 'projects' / 'toy_world' / 'configs' / 'zegot_toy.py'),
         '--fps-images', '1', '--device', 'cpu'], cwd=REPO,
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {line.split()[0]: line.split()[1:]
             for line in result.stdout.splitlines() if line.strip()}
    counts = {key: [int(v.replace(',', '')) for v in lines[key]]
              for key in ('image_encoder', 'text_encoder', 'decode_head',
                          'total')}
    # The frozen CLIP has no trainable parameter; the prompt contexts
    # (N x L x E = 4 x 8 x width) do.
    assert counts['image_encoder'][1] == 0
    assert counts['text_encoder'][1] % 32 == 0 and counts['text_encoder'][1]
    assert counts['total'] == [sum(counts[key][i] for key in (
        'image_encoder', 'text_encoder', 'decode_head')) for i in range(2)]
    gflops = [float(line.split()[-1]) for line in result.stdout.splitlines()
              if line.strip().startswith(('image encoder', 'head (per'))]
    crop = [float(line.split()[-1]) for line in result.stdout.splitlines()
            if 'inference per crop' in line]
    assert len(gflops) == 2 and all(g > 0 for g in gflops)
    assert crop[0] == pytest.approx(sum(gflops), abs=2e-3)
    assert 'inference FPS at 64x64' in result.stdout


def test_report_exit_status_follows_the_checks(capsys):
    report = Report('demo', torch.device('cpu'))
    report.check(True, 'fine')
    assert report.finish() == 0
    report.check(False, 'plans differ')
    assert report.finish() == 1
    assert 'FAILED plans differ' in capsys.readouterr().out
