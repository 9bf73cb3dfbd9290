# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""CPU runs keep freed memory: a training loss step at label resolution
reuses its pages instead of faulting them in again, with the same numbers.
Each case runs in its own process (the setting is per process)."""
import json
import os
import subprocess
import sys

import pytest

from mmseg_zegot.utils.cpu_memory import ENV_VAR, glibc

pytestmark = pytest.mark.skipif(glibc() is None, reason='needs glibc')

#: Five training loss steps (focal + dice on logits upsampled to 512², 40
#: classes: 40 MiB per tensor, above glibc's largest mmap threshold); prints
#: the page faults of each step, the setting's result and the numbers.
STEPS = """
import json, resource, sys
import torch
import torch.nn.functional as F
from mmseg_zegot.models.losses import dice_loss, sigmoid_focal_loss
from mmseg_zegot.utils.cpu_memory import keep_freed_memory_on_cpu

kept = keep_freed_memory_on_cpu(sys.argv[1]) if len(sys.argv) > 1 else None
torch.manual_seed(0)
small = torch.randn(1, 40, 128, 128, requires_grad=True)
target = torch.randint(0, 40, (1, 512, 512))
target[:, :64] = 255
faults, losses = [], []
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    pred = F.interpolate(small, size=(512, 512), mode='bilinear')
    loss = sigmoid_focal_loss(pred, target) + dice_loss(pred, target)
    loss.backward()
    del pred
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    losses.append(loss.item())
print(json.dumps(dict(kept=kept, faults=faults, losses=losses,
                      grad=small.grad.double().sum().item())))
"""

#: Pages of one (1, 40, 512, 512) float32 tensor.
PAGES = 40 * 512 * 512 * 4 // 4096


def run_steps(*device, env=None):
    result = subprocess.run(
        [sys.executable, '-c', STEPS, *device], capture_output=True,
        text=True, timeout=300, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return (json.loads(result.stdout.splitlines()[-1]),
            result.stdout + result.stderr)


def test_freed_memory_is_reused_and_numbers_do_not_change():
    default, _ = run_steps()
    kept, log = run_steps('cpu')
    assert kept['kept'] is True
    assert 'CPU run: freed memory stays in the process' in log
    # By default every step faults in several tensors' pages again ...
    assert min(default['faults'][2:]) > 4 * PAGES
    # ... kept, the steady steps reuse them.
    assert max(kept['faults'][2:]) * 4 < min(default['faults'][2:])
    assert kept['losses'] == default['losses']
    assert kept['grad'] == default['grad']


def test_off_for_accelerators_and_through_the_environment():
    on_gpu, log = run_steps('cuda:0')
    assert on_gpu['kept'] is False and 'CPU run' not in log
    off, log = run_steps('cpu', env={ENV_VAR: '0'})
    assert off['kept'] is False and 'CPU run' not in log
    assert min(off['faults'][2:]) > 4 * PAGES
