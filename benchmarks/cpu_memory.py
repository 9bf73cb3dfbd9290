# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""A CPU training step with glibc's default ``malloc`` and with freed memory
kept (:mod:`mmseg_zegot.utils.cpu_memory`, what the tools set for CPU
runs), side by side in one process.

The step: COCO-Stuff training's losses (class logits at 1/4 of the 512²
crop, upsampled to the labels, focal + dice, backward; B = 2, K = 156
seen classes). Rounds alternate the two settings; before each timed step
the setting is switched and ``malloc_trim(0)`` hands freed memory back,
so the default rounds start as a fresh process would. The default is
glibc's steady state: mmap threshold 32 MiB (the most its dynamic
threshold reaches), trim threshold 64 MiB. Reports time and page faults
per step, and checks that both settings give the same numbers bit for
bit. Each timed step follows an untimed one under the same setting, as
every step but the first of a run does. ``--small``: K = 40.

    python benchmarks/cpu_memory.py [--small] [--repeats 3]
"""
import argparse
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from common import REPO  # noqa: F401  (this checkout first on sys.path)

from mmseg_zegot.models.losses import dice_loss, sigmoid_focal_loss
from mmseg_zegot.utils.benchmark import Report
from mmseg_zegot.utils.cpu_memory import (
    M_MMAP_MAX,
    M_TRIM_THRESHOLD,
    glibc,
    keep_freed_memory,
)

#: ``mallopt`` parameter (``<malloc.h>``) and glibc's defaults.
M_MMAP_THRESHOLD = -3
DEFAULT_MMAP_MAX = 65536
STEADY_MMAP_THRESHOLD = 32 * 2**20
STEADY_TRIM_THRESHOLD = 2 * STEADY_MMAP_THRESHOLD


def default_malloc(libc) -> None:
    libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
    libc.mallopt(M_MMAP_THRESHOLD, STEADY_MMAP_THRESHOLD)
    libc.mallopt(M_TRIM_THRESHOLD, STEADY_TRIM_THRESHOLD)
    libc.malloc_trim(0)


def kept_malloc(libc) -> None:
    libc.malloc_trim(0)
    if not keep_freed_memory():
        raise RuntimeError('mallopt refused the setting')


def train_step(k: int):
    """Upsample (2, K, 128, 128) logits to 512², focal + dice, backward."""
    gen = torch.Generator().manual_seed(0)
    small = torch.randn(2, k, 128, 128, generator=gen).requires_grad_(True)
    target = torch.randint(0, k, (2, 512, 512), generator=gen)
    target[torch.rand(2, 512, 512, generator=gen) < 0.1] = 255

    def run():
        small.grad = None
        pred = F.interpolate(small, size=(512, 512), mode='bilinear')
        loss = sigmoid_focal_loss(pred, target) + dice_loss(pred, target)
        loss.backward()
        return torch.cat([loss.detach().view(1), small.grad.flatten()])

    return run


def measure(step, libc, repeats: int):
    """(seconds, page faults, last output) per setting: rounds alternate
    the settings; in each, an untimed step, then the timed one."""
    settings = {'glibc default': default_malloc,
                'freed memory kept': kept_malloc}
    stats = {name: ([], [], None) for name in settings}
    for _ in range(repeats):
        for name, switch in settings.items():
            switch(libc)
            step()
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            out = step()
            seconds = time.perf_counter() - start
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            times, counts, _ = stats[name]
            times.append(seconds)
            counts.append(faults)
            stats[name] = (times, counts, out)
    return stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed rounds (default: %(default)s)')
    parser.add_argument('--small', action='store_true',
                        help='fewer classes (K = 40)')
    parser.add_argument('--device', default='cpu', choices=['cpu'],
                        help='the CPU only (glibc malloc)')
    args = parser.parse_args()
    libc = glibc()
    if libc is None:
        print('needs glibc (Linux); nothing to compare here')
        return 1
    torch.set_grad_enabled(True)
    report = Report('CPU train step: glibc default malloc vs freed memory kept',
                    torch.device('cpu'))
    k = 40 if args.small else 156
    label = f'train step (B=2, K={k}, 512²)'
    print(f'-- {label}')
    stats = measure(train_step(k), libc, args.repeats)
    medians = {}
    for name, (times, counts, _) in stats.items():
        medians[name] = statistics.median(times)
        report.value(name, f'{medians[name]:.3f} s, '
                     f'{statistics.median(counts):.0f} page faults '
                     f'(median of {len(times)})')
    report.ratio('train step: default / kept time', *medians.values())
    first, second = (out for _, _, out in stats.values())
    report.check(torch.equal(first, second),
                 'same losses and gradients bit for bit under both settings')
    return report.finish()


if __name__ == '__main__':
    sys.exit(main())
