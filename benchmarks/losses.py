# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOT's focal and dice losses side by side with the same formulas run
through autograd, element by element (the reference code's way).

Both get the same full-resolution logits and labels (label-255 pixels
included, counted as negatives of every class as in ZegCLIP / OTSeg) and
return the same loss. Ours computes one image at a time and works the
gradient out in the forward pass, keeping only the logits' gradient;
autograd keeps about ten (B, K, H, W) tensors per loss. Timed
interleaved: forward + backward of focal + dice, with peak memory and the
bytes saved for backward. Checks: equal losses and gradients (float32,
relative 1e-4).

Shapes: COCO-Stuff training, B = 4, K = 156 seen classes, 512²;
``--small``: B = 2, K = 16, 128².

    python benchmarks/losses.py [--small] [--device cuda] [--batch 2]
"""
import argparse
import sys

import torch
import torch.nn.functional as F
from common import (
    add_common_args,
)

from mmseg_zegot.models.losses import dice_loss, sigmoid_focal_loss
from mmseg_zegot.utils.benchmark import (
    MiB,
    Report,
    peak_memory,
    saved_bytes,
    time_interleaved,
)

IGNORE = 255


def autograd_focal(pred, target, alpha=0.25, gamma=2.0):
    """The reference's focal term on every pixel, as autograd runs it."""
    classes = torch.arange(pred.size(1), device=pred.device)
    t = (target.unsqueeze(1) == classes[None, :, None, None]).to(pred.dtype)
    prob = pred.sigmoid()
    ce = F.binary_cross_entropy_with_logits(pred, t, reduction='none')
    p_t = prob * t + (1 - prob) * (1 - t)
    alpha_t = alpha * t + (1 - alpha) * (1 - t)
    loss = alpha_t * (1 - p_t).pow(gamma) * ce
    return loss.flatten(2).mean(2), t


def autograd_losses(pred, target):
    """Focal + dice of the reference, normalised by the present pairs."""
    focal, t = autograd_focal(pred, target)
    prob = pred.sigmoid()
    inter = (prob * t).flatten(2).sum(2)
    dice = 1 - (2 * inter + 1) / (prob.flatten(2).sum(2) +
                                  t.flatten(2).sum(2) + 1)
    present = t.flatten(2).any(2)
    num = present.sum().clamp(min=1)
    return focal.sum() / num + (dice * present).sum() / num


def our_losses(pred, target):
    return (sigmoid_focal_loss(pred, target, ignore_index=IGNORE) +
            dice_loss(pred, target, ignore_index=IGNORE))


def inputs(batch, k, size, device, seed=0):
    """Logits with ±4-ish spread and labels with 10% ignored pixels."""
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randn(batch, k, size, size, generator=gen) * 2
    target = torch.randint(0, k, (batch, size, size), generator=gen)
    target[torch.rand(batch, size, size, generator=gen) < 0.1] = IGNORE
    return pred.to(device).requires_grad_(True), target.to(device)


def step(loss_fn, pred, target):
    """A closure: loss forward + backward; returns (loss, gradient)."""
    def run():
        pred.grad = None
        loss = loss_fn(pred, target)
        loss.backward()
        return loss.detach(), pred.grad
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.add_argument('--batch', type=int, default=None,
                        help='B (default 4; 2 with --small)')
    args = parser.parse_args()
    device = torch.device(args.device)
    report = Report('ZegOT focal + dice losses vs autograd', device)
    batch, k, size = (2, 16, 128) if args.small else (4, 156, 512)
    batch = args.batch or batch
    print(f'-- B = {batch}, K = {k}, {size}x{size}')
    pred, target = inputs(batch, k, size, device)
    fns = {'autograd (reference formulas)': step(autograd_losses, pred,
                                                 target),
           'ours': step(our_losses, pred, target)}
    medians = report.timings(time_interleaved(fns, args.repeats, device),
                             unit='s')
    report.ratio('train step: autograd / ours time', *medians.values())
    peaks = {name: peak_memory(fn, device) for name, fn in fns.items()}
    saved = {name: saved_bytes(lambda fn=fn: fn()) for name, fn in
             fns.items()}
    for name in fns:
        report.value(f'peak memory {name}', f'{peaks[name] / MiB:.1f} MiB')
        report.value(f'saved for backward {name}',
                     f'{saved[name] / MiB:.1f} MiB')
    report.ratio('train step: autograd / ours peak memory', *peaks.values())
    (loss_a, grad_a), (loss_b, grad_b) = [
        (value.clone(), grad.clone()) for value, grad in
        (fn() for fn in fns.values())]
    report.check(torch.allclose(loss_a, loss_b, rtol=1e-4),
                 f'equal losses ({loss_a.item():.6f}, {loss_b.item():.6f})')
    scale = grad_a.abs().max().item()
    diff = (grad_a - grad_b).abs().max().item()
    report.check(diff <= 1e-4 * scale, f'equal gradients, max |diff| '
                 f'{diff:.2e} <= 1e-4 x max |grad| ({scale:.2e})')
    return report.finish()


if __name__ == '__main__':
    sys.exit(main())
