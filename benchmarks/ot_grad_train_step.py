# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""One ZegOT training step with ``ot_grad='detach'`` vs ``'unrolled'``.

Builds the real segmentor from ``configs/_base_/models/zegot_vit-b16.py``
with a tiny inline open_clip CLIP (random weights, no download), then runs
both gradient modes side by side in this process on the same batch:
median wall time of a full ``train_step`` (forward, backward, AdamW step),
the bytes autograd keeps for backward (every tensor saved by the graph,
measured with ``saved_tensors_hooks``) and, on CUDA, the peak allocation.
It prints ratios and exits non-zero if the two modes disagree on the
forward losses (the gradient mode must not change the forward pass).

    python benchmarks/ot_grad_train_step.py [--size 64] [--batch 4]
"""
import argparse
import copy
import os.path as osp
import statistics
import sys

import torch
from common import (
    REPO,
    TINY_CLIP,
    image_batch,
)
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_zegot  # noqa: F401
from mmseg_zegot.utils.benchmark import (
    saved_bytes,
    synchronize,
    time_interleaved,
)

CLASSES = ('cat', 'dog', 'car', 'tree', 'sky', 'road', 'person', 'boat')


def build_model(ot_grad: str, size: int, device: torch.device):
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'models', 'zegot_vit-b16.py'))
    model = copy.deepcopy(cfg.model)
    clip = dict(model_name='tiny', model_cfg=TINY_CLIP, quick_gelu=False,
                pretrained=None)
    model.image_encoder.update(clip, out_indices=(0, 1))
    model.text_encoder.update(clip, prompt_length=4)
    model.decode_head.ot_grad = ot_grad
    model.update(class_names=CLASSES, seen_classes=CLASSES[:6])
    model.data_preprocessor.size = (size, size)
    torch.manual_seed(0)
    return MODELS.build(model).to(device)


def loss_fn(model, data):
    """Forward and loss of one training batch (what backward needs)."""

    def run():
        processed = model.data_preprocessor(data, True)
        model.parse_losses(model(**processed, mode='loss'))

    return run


def train_step_fn(model, data):
    """One full ``train_step`` (forward, backward, AdamW step)."""
    optim = OptimWrapper(torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4))
    return lambda: model.train_step(data, optim)


def forward_losses(model, data) -> dict:
    with torch.no_grad():
        processed = model.data_preprocessor(data, True)
        return {k: v.item() for k, v in model(**processed, mode='loss').items()
                if k.startswith('decode.loss')}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    init_default_scope('mmseg')
    device = torch.device(args.device)
    data = image_batch(args.size, args.size, args.batch, len(CLASSES),
                       device)
    models, losses, saved = {}, {}, {}
    for mode in ('detach', 'unrolled'):
        # Right after the seeded build (same dropout draws in both modes),
        # before any optimizer step changes the weights.
        models[mode] = build_model(mode, args.size, device)
        losses[mode] = forward_losses(models[mode], data)
        saved[mode] = saved_bytes(loss_fn(models[mode], data))
    # Both modes timed in turn (interleaved), so background load hits both.
    times = time_interleaved(
        {mode: train_step_fn(model, data) for mode, model in models.items()},
        args.repeats, device)
    results = {}
    for mode, model in models.items():
        peak = None
        if device.type == 'cuda':
            synchronize(device)
            torch.cuda.reset_peak_memory_stats()
            train_step_fn(model, data)()
            synchronize(device)
            peak = torch.cuda.max_memory_allocated()
        results[mode] = dict(time=statistics.median(times[mode]),
                             saved=saved[mode], peak=peak,
                             losses=losses[mode])
        print(f'{mode:>9}: step {results[mode]["time"] * 1e3:8.1f} ms '
              f'(median of {args.repeats}, interleaved), saved for backward '
              f'{saved[mode] / 2**20:8.2f} MiB'
              + (f', CUDA peak {peak / 2**20:.1f} MiB' if peak else ''))
    detach, unrolled = results['detach'], results['unrolled']
    print(f'unrolled / detach: time x{unrolled["time"] / detach["time"]:.2f}, '
          f'saved-for-backward x{unrolled["saved"] / detach["saved"]:.2f}'
          + (f', CUDA peak x{unrolled["peak"] / detach["peak"]:.2f}'
             if detach['peak'] else ''))
    mismatch = [k for k in detach['losses']
                if abs(detach['losses'][k] - unrolled['losses'][k]) > 1e-5 *
                max(1.0, abs(detach['losses'][k]))]
    if mismatch:
        print(f'FAILED: forward losses differ between modes: {mismatch}')
        return 1
    print('forward losses identical in both modes: OK')
    return 0


if __name__ == '__main__':
    sys.exit(main())
