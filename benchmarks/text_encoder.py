# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The text path side by side: EOT-truncated vs 77-token encoding, and
cached vs recomputed text embeddings over a small test run.

1. Encoding. :class:`ZegOTPromptTextEncoder` cuts the K*N prompt sequences
   after the vocabulary's longest EOT (exact under CLIP's causal mask). The
   baseline is the same encoder fed the full ``context_length`` sequences
   (its token ids zero-padded to 77 - L, CLIP's own padding), as CoOp-style
   code runs it. For the VOC and COCO-Stuff vocabularies: time and peak
   memory of the inference encoding (no autograd), of a training step
   (forward + backward to the prompt contexts) and the bytes saved for
   backward; the embeddings must agree within 1e-5. On a CPU, a training
   step whose 77-token version would keep more than ``--max-train-gib``
   for backward is skipped (COCO-Stuff's keeps ~12 GiB with ViT-B/16).
2. Inference. A whole small test run (``test_step`` over ``--images``
   images, slide inference, COCO-Stuff's 171 classes) with our per-vocabulary
   cache, against recomputing the text for every crop: with our truncated
   encoder, and with the 77-token encoding (what the published code does).
   Reports images per second; the cached and recomputed predictions must be
   identical. The cached run starts from an empty cache, so it pays for one
   encoding; a second cached run starts with the vocabulary already
   encoded, the per-image cost of a long test run (where the one encoding
   is amortised over thousands of images).

ViT-B/16 text tower with random weights (speed does not depend on them);
``--small``: a 2-layer width-64 CLIP and 64 px crops.

    python benchmarks/text_encoder.py [--small] [--device cuda]
"""
import argparse
import sys
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from common import (
    add_common_args,
    build_segmentor,
    image_batch,
    segmentor_config,
)
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmseg_zegot.datasets.splits import resolve_split
from mmseg_zegot.utils.benchmark import (
    MiB,
    Report,
    peak_memory,
    saved_bytes,
    time_interleaved,
)


def full_context_ids(encoder) -> torch.Tensor:
    """The encoder's token ids zero-padded to ``context_length - L``."""
    ids = encoder.token_ids
    width = encoder.clip.context_length - encoder.prompt_length
    return F.pad(ids, (0, width - ids.shape[1]))


def encoding_section(report, dataset, args, device):
    names = resolve_split(dataset).classes
    cfg = segmentor_config(dataset, args.small).text_encoder
    cfg.update(num_prompts=args.prompts, vocabulary=names)
    torch.manual_seed(0)
    encoder = MODELS.build(cfg).to(device)
    ids = {'truncated': encoder.token_ids, '77-token': full_context_ids(encoder)}
    k, n = len(names), encoder.num_prompts
    lengths = {key: value.shape[1] + encoder.prompt_length
               for key, value in ids.items()}
    print(f'-- {dataset}: K = {k} classes x N = {n} prompts, sequences of '
          f'{lengths["truncated"]} (truncated) vs {lengths["77-token"]} tokens')

    def encode(key):
        def run():
            encoder.token_ids = ids[key]
            with torch.no_grad():
                return encoder._encode()
        return run

    encoder.eval()
    fns = {f'encode {key}': encode(key) for key in ids}
    medians = report.timings(time_interleaved(fns, args.repeats, device))
    report.ratio(f'{dataset} encode: 77-token / truncated time',
                 medians['encode 77-token'], medians['encode truncated'], 2.5)
    peaks = {key: peak_memory(fn, device) for key, fn in fns.items()}
    for key, value in peaks.items():
        report.value(f'peak memory {key}', f'{value / MiB:.1f} MiB')
    report.ratio(f'{dataset} encode: 77-token / truncated peak memory',
                 peaks['encode 77-token'], peaks['encode truncated'], 2.5)
    diff = (encode('truncated')() - encode('77-token')()).abs().max().item()
    report.check(diff <= 1e-5, f'{dataset}: truncated vs 77-token embeddings, '
                 f'max |diff| {diff:.2e} <= 1e-5')

    # About ten float32 activations per token, layer and channel are kept
    # for backward.
    text = encoder.clip.transformer
    estimate = k * n * lengths['77-token'] * text.width * text.layers * 40
    if device.type == 'cpu' and estimate > args.max_train_gib * 2**30:
        report.value(f'{dataset} training step', 'skipped on CPU: the '
                     f'77-token step would keep ~{estimate / 2**30:.0f} GiB '
                     f'(> --max-train-gib {args.max_train_gib})')
        encoder.token_ids = ids['truncated']
        return
    encoder.train()
    weights = torch.randn(k, n, encoder.output_dims,
                          generator=torch.Generator().manual_seed(0)).to(device)

    def loss(key):
        encoder.token_ids = ids[key]
        return (encoder._encode() * weights).sum()

    def step(key):
        def run():
            encoder.contexts.grad = None
            loss(key).backward()
        return run

    fns = {f'train step {key}': step(key) for key in ids}
    medians = report.timings(time_interleaved(fns, args.repeats, device))
    report.ratio(f'{dataset} train step: 77-token / truncated time',
                 medians['train step 77-token'],
                 medians['train step truncated'], 2.5)
    saved = {key: saved_bytes(lambda key=key: loss(key)) for key in ids}
    for key, value in saved.items():
        report.value(f'saved for backward, train step {key}',
                     f'{value / MiB:.1f} MiB')
    report.ratio(f'{dataset} train step: 77-token / truncated saved memory',
                 saved['77-token'], saved['truncated'], 2.5)
    grads = []
    for key in ids:
        encoder.contexts.grad = None
        loss(key).backward()
        grads.append(encoder.contexts.grad.clone())
    diff = (grads[0] - grads[1]).abs().max().item()
    scale = grads[1].abs().max().item()
    report.check(diff <= 1e-4 * scale, f'{dataset}: context gradients agree, '
                 f'max |diff| {diff:.2e} <= 1e-4 x {scale:.2e}')
    encoder.token_ids = ids['truncated']


@contextmanager
def recomputed_text(encoder, token_ids=None):
    """Recompute the embeddings at every call (optionally from other token
    ids), as code without a cache does for every crop."""
    cached_forward = encoder.forward
    saved_ids = encoder.token_ids

    def forward():
        encoder._cache = None
        return cached_forward()

    encoder.forward = forward
    if token_ids is not None:
        encoder.token_ids = token_ids
    try:
        yield
    finally:
        del encoder.forward
        encoder.token_ids = saved_ids
        encoder._cache = None


def inference_section(report, args, device):
    size = (64, 96) if args.small else (args.height, args.width)
    model = build_segmentor(segmentor_config('coco-stuff', args.small),
                            device)
    model.eval()
    k = len(model.test_classes)
    batches = [image_batch(*size, 1, k, device, seed=i)
               for i in range(args.images)]
    crop, stride = model.test_cfg.crop_size, model.test_cfg.stride
    crops = [max(s - c + t - 1, 0) // t + 1
             for s, c, t in zip(size, crop, stride)]
    print(f'-- test run: {args.images} images of {size[0]}x{size[1]}, slide '
          f'{crop[0]}/{stride[0]} ({crops[0] * crops[1]} crops each), '
          f'K = {k} classes')
    with torch.no_grad():
        model.test_step(batches[0])  # sets the test vocabulary
    encoder = model.text_encoder
    full_ids = full_context_ids(encoder)
    predictions = {}

    def test_run(name, token_ids=None, recompute=False, warm=False):
        def run():
            if warm:
                encoder()  # steady state: the vocabulary already encoded
            else:
                encoder._cache = None
            results = []
            with torch.no_grad():
                if recompute:
                    with recomputed_text(encoder, token_ids):
                        for batch in batches:
                            results += model.test_step(batch)
                else:
                    for batch in batches:
                        results += model.test_step(batch)
            predictions[name] = [r.pred_sem_seg.data for r in results]
        return run

    fns = {
        'test run, cached text (ours)': test_run('cached'),
        'test run, cached text, cache already warm': test_run(
            'cached-warm', warm=True),
        'test run, text recomputed per crop (truncated)': test_run(
            'recomputed', recompute=True),
        'test run, text recomputed per crop (77 tokens)': test_run(
            'recomputed-77', full_ids, recompute=True),
    }
    times = time_interleaved(fns, args.run_repeats, device,
                             warmup=args.small or device.type == 'cuda')
    medians = report.timings(times, unit='s', per_call=args.images)
    cached = medians['test run, cached text (ours)']
    report.ratio('inference: recomputed (77 tokens, published) / cached',
                 medians['test run, text recomputed per crop (77 tokens)'],
                 cached)
    report.ratio('inference: recomputed (truncated) / cached',
                 medians['test run, text recomputed per crop (truncated)'],
                 cached)
    report.ratio('inference, long runs: recomputed (77 tokens) / warm cache',
                 medians['test run, text recomputed per crop (77 tokens)'],
                 medians['test run, cached text, cache already warm'], 10)
    same = all(torch.equal(a, b) for a, b in zip(predictions['cached'],
                                                  predictions['recomputed']))
    report.check(same, 'cached and recomputed predictions are identical')
    agree = torch.cat([(a == b).flatten() for a, b in zip(
        predictions['cached'], predictions['recomputed-77'])]).float().mean()
    report.check(agree.item() >= 0.999, 'cached vs 77-token recomputed '
                 f'predictions: {agree.item() * 100:.3f}% pixels equal')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.add_argument('--prompts', type=int, default=4)
    parser.add_argument('--images', type=int, default=3)
    parser.add_argument('--height', type=int, default=512)
    parser.add_argument('--width', type=int, default=512)
    parser.add_argument('--run-repeats', type=int, default=1,
                        help='timed test runs per variant')
    parser.add_argument('--max-train-gib', type=float, default=4.0)
    parser.add_argument('--datasets', nargs='*', default=['voc', 'coco-stuff'],
                        help='vocabularies of the encoding comparison '
                        '(none: skip it)')
    parser.add_argument('--skip-inference', action='store_true')
    args = parser.parse_args()
    device = torch.device(args.device)
    init_default_scope('mmseg')
    report = Report('Text path: EOT truncation and the inference cache',
                    device)
    for dataset in args.datasets:
        encoding_section(report, dataset, args, device)
    if not args.skip_inference:
        inference_section(report, args, device)
    return report.finish()


if __name__ == '__main__':
    sys.exit(main())
