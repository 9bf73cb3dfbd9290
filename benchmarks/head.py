# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOTHead side by side with a head built from the reference-style pieces.

Both heads have the same weights and get the same inputs (random taps,
global embedding, prompt embeddings requiring grad, labels). The
reference-style head is ZegOTHead with the published way of running MPOT:
one solver call per tapped layer, each :func:`solver.reference_sinkhorn`
(log domain, up to 100 iterations with a 1e-6 tolerance read with
``.item()`` every iteration, autograd through every iteration). Ours makes
one call for all taps, kernel form, ``ot_grad='detach'`` (50 iterations).

Timed interleaved: a training step (``loss()`` forward + backward, to the
head's parameters and the prompt embeddings) and an inference forward
(``predict()``), with peak memory. Checks: the two heads' score logits agree
(the reference runs to its tolerance, ours 50 iterations) and all losses are
finite.

Shapes: ViT-B/16 at 512^2 (D = 768, C = 512, 32x32 patches, 4 taps), B = 4,
K = 156 (training) / 171 (inference), N = 4; ``--small``: D = 64, C = 32,
8x8 patches, B = 2, K = 16 / 21. The training step at B = 4 needs about
20 GB on a CPU (mostly the losses on 156 full-resolution class maps):
``--batch 1`` fits a small machine.

    python benchmarks/head.py [--small] [--device cuda] [--prompts 4 8]
"""
import argparse
import copy
import sys

import torch
from common import (
    add_common_args,
    segmentor_config,
)
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from solver import reference_sinkhorn

from mmseg_zegot.models.decode_heads import ZegOTHead
from mmseg_zegot.utils.benchmark import (
    MiB,
    Report,
    peak_memory,
    time_interleaved,
)


class ReferenceStyleHead(ZegOTHead):
    """ZegOTHead whose MPOT runs the published way: per tap, the reference
    loop, autograd through all iterations. ``tol=None`` runs ``ot_iters``
    iterations (equal work); else up to 100 with that tolerance."""

    def __init__(self, *args, tol=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tol = tol
        self.iterations = []  # run by each solver call

    def refined_score(self, feats, queries):
        if feats.dim() == 4:  # T×B×M×C: one solver call per tap
            return torch.stack([self.refined_score(f, queries)
                                for f in feats])
        scores = torch.einsum('bmc,bknc->bkmn', feats, queries).float()
        m, n = scores.shape[-2:]
        if self.tol is None:
            plan, iters = reference_sinkhorn(1.0 - scores, self.ot_epsilon,
                                             self.ot_iters, -1.0)
        else:
            plan, iters = reference_sinkhorn(1.0 - scores, self.ot_epsilon,
                                             100, self.tol)
        self.iterations.append(iters)
        return (plan * scores).sum(dim=-1) * (m * n)


def make_inputs(batch, dims, grid, k, n, device, seed=0):
    """``[img, (taps, global), text]`` and data samples with labels."""
    in_dims, out_dims, taps = dims
    gen = torch.Generator().manual_seed(seed)
    size = grid * 16
    features = [torch.randn(batch, in_dims, grid, grid, generator=gen)
                for _ in range(taps)]
    glob = torch.nn.functional.normalize(
        torch.randn(batch, out_dims, generator=gen), dim=-1)
    text = torch.nn.functional.normalize(
        torch.randn(k, n, out_dims, generator=gen), dim=-1)
    samples = []
    for _ in range(batch):
        label = torch.randint(0, k, (1, size, size), generator=gen)
        sample = SegDataSample(gt_sem_seg=PixelData(data=label.to(device)))
        sample.set_metainfo(dict(img_shape=(size, size),
                                 ori_shape=(size, size),
                                 pad_shape=(size, size)))
        samples.append(sample)
    img = torch.zeros(batch, 3, size, size, device=device)
    features = [f.to(device) for f in features]
    text = text.to(device).requires_grad_(True)
    return [img, (features, glob.to(device)), text], samples


def build_heads(cfg, device):
    torch.manual_seed(0)
    ours = MODELS.build(cfg).to(device)
    ours.init_weights()
    heads = {'ours': ours}
    args = {k: v for k, v in cfg.items() if k != 'type'}
    for name, tol in (('reference-style, equal iterations', None),
                      ('reference-style, tol 1e-6', 1e-6)):
        heads[name] = ReferenceStyleHead(**args, tol=tol).to(device)
        heads[name].load_state_dict(ours.state_dict())
    return heads


def report_ratios(report, label, medians, heads):
    names = list(medians)
    for name, head_name in zip(names[1:], list(heads)[1:]):
        iterations = sorted(set(heads[head_name].iterations))
        heads[head_name].iterations.clear()
        report.ratio(f'{label}: {head_name} / ours', medians[name],
                     medians[names[0]])
        report.value(f'   ({head_name} ran', f'{iterations} iterations)')


def train_step(head, inputs, samples):
    """A closure running ``loss()`` forward + backward."""
    def run():
        head.zero_grad(set_to_none=True)
        inputs[2].grad = None
        losses = head.loss(inputs, samples, {})
        sum(v for key, v in losses.items()
            if key.startswith('loss')).backward()
        return losses
    return run


def predict(head, inputs, metas):
    """A closure running ``predict()`` without autograd."""
    def run():
        with torch.no_grad():
            return head.predict(inputs, metas, {})
    return run


def compare(report, n, shapes, args, device):
    batch, dims, grid, k_train, k_test = shapes
    cfg = copy.deepcopy(dict(segmentor_config().decode_head))
    cfg.update(in_channels=dims[0], channels=dims[1],
               in_index=tuple(range(dims[2])))
    print(f'-- N = {n}: B = {batch}, {grid}x{grid} patches, D = {dims[0]}, '
          f'C = {dims[1]}, {dims[2]} taps')
    heads = build_heads(dict(cfg, num_classes=k_train), device)
    inputs, samples = make_inputs(batch, dims, grid, k_train, n, device)
    fns = {}
    for name, head in heads.items():
        head.train()
        fns[f'train step, {name} (K = {k_train})'] = train_step(
            head, inputs, samples)
    medians = report.timings(time_interleaved(fns, args.repeats, device))
    report_ratios(report, 'train step', medians, heads)
    for name, fn in fns.items():
        report.value(f'peak memory {name}',
                     f'{peak_memory(fn, device) / MiB:.1f} MiB')
    for name, fn in zip(heads, fns.values()):
        losses = fn()
        report.check(all(torch.isfinite(v).all() for v in losses.values()),
                     f'{name}: finite losses')

    heads = build_heads(dict(cfg, num_classes=k_test), device)
    inputs, _ = make_inputs(batch, dims, grid, k_test, n, device, seed=1)
    size = grid * 16
    metas = [dict(img_shape=(size, size), ori_shape=(size, size),
                  pad_shape=(size, size))] * batch
    fns = {}
    for name, head in heads.items():
        head.eval()
        fns[f'inference, {name} (K = {k_test})'] = predict(head, inputs, metas)
    medians = report.timings(time_interleaved(fns, args.repeats, device))
    report_ratios(report, 'inference', medians, heads)
    for name, fn in fns.items():
        report.value(f'peak memory {name}',
                     f'{peak_memory(fn, device) / MiB:.1f} MiB')
    with torch.no_grad():
        logits = [head.forward(inputs)['score_logits']
                  for head in heads.values()]
    for name, other in zip(list(heads)[1:], logits[1:]):
        diff = (logits[0] - other).abs().max().item()
        report.check(diff <= 1e-3, f'score logits of ours and {name} agree, '
                     f'max |diff| {diff:.2e} <= 1e-3')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.add_argument('--prompts', type=int, nargs='+', default=[4])
    parser.add_argument('--batch', type=int, default=None,
                        help='B (default 4; 2 with --small)')
    args = parser.parse_args()
    device = torch.device(args.device)
    init_default_scope('mmseg')
    report = Report('ZegOTHead vs a reference-style head', device)
    if args.small:
        shapes = [2, (64, 32, 4), 8, 16, 21]
    else:
        shapes = [4, (768, 512, 4), 32, 156, 171]
    if args.batch:
        shapes[0] = args.batch
    for n in args.prompts:
        compare(report, n, shapes, args, device)
    return report.finish()


if __name__ == '__main__':
    sys.exit(main())
