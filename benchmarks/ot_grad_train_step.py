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
import time

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmseg.registry import MODELS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402

import mmseg_zegot  # noqa: E402,F401

TINY_CLIP = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, layers=2, width=64, head_width=32,
                    patch_size=8, mlp_ratio=2.0),
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2,
                  layers=2, mlp_ratio=2.0))
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


def make_batch(size: int, batch: int, device: torch.device):
    generator = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size),
                                    generator=generator).float().to(device))
        label = torch.randint(0, len(CLASSES), (1, size, size),
                              generator=generator)
        sample = SegDataSample(gt_sem_seg=PixelData(data=label.to(device)))
        sample.set_metainfo(dict(img_shape=(size, size),
                                 ori_shape=(size, size),
                                 pad_shape=(size, size)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def saved_bytes(model, data) -> int:
    """Bytes of all tensors the autograd graph saves for backward."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        processed = model.data_preprocessor(data, True)
        losses = model(**processed, mode='loss')
    model.parse_losses(losses)
    return total


def time_steps(model, data, repeats: int) -> list:
    optim = OptimWrapper(torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4))
    times = []
    for _ in range(repeats + 1):  # the first run warms up
        start = time.perf_counter()
        model.train_step(data, optim)
        if data['inputs'][0].is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times[1:]


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
    data = make_batch(args.size, args.batch, device)
    results = {}
    for mode in ('detach', 'unrolled'):
        model = build_model(mode, args.size, device)
        losses = forward_losses(model, data)
        saved = saved_bytes(model, data)
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        times = time_steps(model, data, args.repeats)
        peak = (torch.cuda.max_memory_allocated()
                if device.type == 'cuda' else None)
        results[mode] = dict(time=statistics.median(times), saved=saved,
                             peak=peak, losses=losses)
        print(f'{mode:>9}: step {results[mode]["time"] * 1e3:8.1f} ms '
              f'(median of {args.repeats}), saved for backward '
              f'{saved / 2**20:8.2f} MiB'
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
