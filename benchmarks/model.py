# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The whole ZegOT model: training iterations per second, inference images
per second, peak memory and where inference time goes.

ViT-B/16 COCO-Stuff config (156 seen / 171 classes, 4 prompts) at 512^2
crops with random weights (speed does not depend on them); ``--small``: a
2-layer width-64 CLIP and 64 px crops.

* training: ``train_step`` (forward, backward, AdamW) on ``--batch`` crops;
* inference: ``test_step`` on single 512^2 images (one slide window each),
  text cached;
* breakdown of one inference crop: the frozen image encoder, the head's
  forward and its calibrated prediction (forward + upsampling), timed
  interleaved; the head's share of the image encoder's time;
* post-processing side by side: our calibrated prediction (each
  (B, K, H, W) map allocated once, sigmoids and calibration in place) vs
  the same formula out of place, and our slide inference vs mmseg's (which
  pads every window's scores to a whole-image map), on a 4:3 image (two
  windows);
* on CUDA only: each of the above in float32 and under bfloat16 autocast
  side by side, the bf16 matrix-multiply rate measured on this GPU, and the
  rate the frozen ViT-B/16 reaches (its FLOPs over its time at the training
  batch size, bf16).

Checks: finite losses; the post-processing variants give the same scores
(slide inference: bit-identical); the prediction of the bf16 run agrees
with the float32 one on at least 99% of the pixels (random weights make
many near-ties, so this is a smoke check only).

    python benchmarks/model.py [--small] [--device cuda] [--batch 4]
"""
import argparse
import copy
import sys
from contextlib import nullcontext

import torch
from common import (
    add_common_args,
    build_segmentor,
    image_batch,
    segmentor_config,
)
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmseg.models.segmentors import MultimodalEncoderDecoder
from mmseg.models.utils import resize

from mmseg_zegot.utils.benchmark import (
    MiB,
    Report,
    count_flops,
    peak_memory,
    synchronize,
    time_interleaved,
)


def precisions(device):
    """name -> autocast context factory (bf16 variant on CUDA only)."""
    variants = {'fp32': nullcontext}
    if device.type == 'cuda':
        variants['bf16 autocast'] = lambda: torch.autocast(
            'cuda', dtype=torch.bfloat16)
    return variants


def training(report, model, args, device, size):
    k = len(model.class_names)
    data = image_batch(size, size, args.batch, k, device)
    params = [p for p in model.parameters() if p.requires_grad]
    fns = {}
    for name in precisions(device):
        optim = torch.optim.AdamW(params, lr=1e-6)
        wrapper = (OptimWrapper(optim) if name == 'fp32' else
                   AmpOptimWrapper(optimizer=optim, dtype=torch.bfloat16))
        fns[f'train step {name}'] = (
            lambda wrapper=wrapper: model.train_step(data, wrapper))
    model.train()
    times = time_interleaved(fns, args.repeats, device)
    medians = report.timings(times, unit='s')
    for name, value in medians.items():
        report.value(f'{name}: iterations/s', f'{1 / value:.3f} '
                     f'(batch {args.batch}, {size}x{size})')
    for name, fn in fns.items():
        losses = []
        peak = peak_memory(lambda fn=fn, out=losses: out.append(fn()), device)
        report.value(f'peak memory {name}', f'{peak / MiB:.0f} MiB')
        report.check(all(torch.isfinite(v).all()
                         for v in losses[0].values()), f'{name}: finite losses')
    if len(medians) > 1:
        report.ratio('train step fp32 / bf16 autocast',
                     medians['train step fp32'],
                     medians['train step bf16 autocast'])


def inference(report, model, args, device, size):
    k = len(model.test_classes)
    batches = [image_batch(size, size, 1, k, device, seed=i)
               for i in range(args.images)]
    model.eval()
    predictions = {}

    def run(name, autocast):
        def test_run():
            with torch.no_grad(), autocast():
                predictions[name] = [model.test_step(batch)[0].pred_sem_seg
                                     .data for batch in batches]
        return test_run

    fns = {f'test run {name}': run(name, autocast)
           for name, autocast in precisions(device).items()}
    medians = report.timings(time_interleaved(fns, args.repeats, device),
                             unit='s', per_call=args.images)
    for name, fn in fns.items():
        report.value(f'peak memory {name}',
                     f'{peak_memory(fn, device) / MiB:.0f} MiB')
    if 'bf16 autocast' in predictions:
        report.ratio('test run fp32 / bf16 autocast',
                     medians['test run fp32'],
                     medians['test run bf16 autocast'])
        agree = torch.cat([(a == b).flatten() for a, b in zip(
            predictions['fp32'], predictions['bf16 autocast'])]).float()
        report.check(agree.mean().item() >= 0.99, 'bf16 vs fp32 predictions:'
                     f' {agree.mean().item() * 100:.2f}% pixels equal')


def breakdown(report, model, args, device, size):
    model.eval()
    crop = torch.randn(1, 3, size, size, device=device)
    metas = [dict(img_shape=(size, size), ori_shape=(size, size),
                  pad_shape=(size, size))]
    head = model.decode_head
    with torch.no_grad():
        text = model._text_embeddings(model.test_classes)
        feats = model.extract_feat(crop)
    for name, autocast in precisions(device).items():
        def image(autocast=autocast):
            with torch.no_grad(), autocast():
                model.extract_feat(crop)

        def head_forward(autocast=autocast):
            with torch.no_grad(), autocast():
                head.forward([crop, feats, text])

        def head_predict(autocast=autocast):
            with torch.no_grad(), autocast():
                head.predict([crop, feats, text], metas, model.test_cfg)

        fns = {f'{name}: image encoder': image,
               f'{name}: head forward': head_forward,
               f'{name}: head forward + prediction': head_predict}
        medians = report.timings(time_interleaved(fns, args.repeats, device))
        share = (medians[f'{name}: head forward + prediction']
                 / medians[f'{name}: image encoder'])
        report.value(f'{name}: head share of the image encoder time',
                     f'{share * 100:.1f}%'
                     + (f'  [target <= 25%: '
                        f'{"met" if share <= 0.25 else "MISSED"}]'
                        if device.type == 'cuda' else ''))


def reference_prediction(head, seg_logits, size):
    """The calibrated prediction written out of place, the way it was before
    (and as mmseg-style heads write it): every step a new (B, K, H, W) map."""
    logits = {key: resize(value.float(), size=size, mode='bilinear',
                          align_corners=head.align_corners)
              for key, value in seg_logits.items()}
    lam = head.ensemble_weight
    prob = (lam * logits['decoder_logits']
            + (1 - lam) * logits['score_logits']).sigmoid()
    seen = head.seen_mask.to(prob.device)[None, :, None, None]
    return prob - head.seen_bias * seen.to(prob.dtype)


def postprocessing(report, model, args, device, size):
    """Ours vs the out-of-place prediction and mmseg's slide inference."""
    model.eval()
    head = model.decode_head
    crop = torch.randn(1, 3, size, size, device=device)
    metas = [dict(img_shape=(size, size), pad_shape=(size, size))]
    with torch.no_grad():
        text = model._text_embeddings(model.test_classes)
        logits = head.forward([crop, model.extract_feat(crop), text])

    def prediction(fn):
        def run():
            with torch.no_grad():
                return fn()
        return run

    fns = {
        'prediction from logits, ours (in place)': prediction(
            lambda: head.predict_by_feat(logits, metas)),
        'prediction from logits, out of place': prediction(
            lambda: reference_prediction(head, logits, (size, size))),
    }
    medians = report.timings(time_interleaved(fns, args.repeats, device))
    names = list(fns)
    report.ratio('prediction: out of place / ours', medians[names[1]],
                 medians[names[0]])
    for name, fn in fns.items():
        report.value(f'peak memory {name}',
                     f'{peak_memory(fn, device) / MiB:.0f} MiB')
    diff = (fns[names[0]]() - fns[names[1]]()).abs().max().item()
    report.check(diff <= 1e-6, f'in-place vs out-of-place prediction, max '
                 f'|diff| {diff:.1e} <= 1e-6')

    height, width = size, size * 4 // 3  # two windows, as a 4:3 image
    image = torch.randn(1, 3, height, width, device=device)
    image_metas = [dict(ori_shape=(height, width), img_shape=(height, width),
                        pad_shape=(height, width))]
    outputs = {}

    def slide(name, fn):
        def run():
            with torch.no_grad():
                outputs[name] = fn(model, image, copy.deepcopy(image_metas))
        return run

    fns = {
        f'slide inference {height}x{width}, ours': slide(
            'ours', type(model).slide_inference),
        f'slide inference {height}x{width}, mmseg': slide(
            'mmseg', MultimodalEncoderDecoder.slide_inference),
    }
    medians = report.timings(time_interleaved(fns, args.repeats, device))
    names = list(fns)
    report.ratio('slide inference: mmseg / ours', medians[names[1]],
                 medians[names[0]])
    for name, fn in fns.items():
        report.value(f'peak memory {name}',
                     f'{peak_memory(fn, device) / MiB:.0f} MiB')
    report.check(torch.equal(outputs['ours'], outputs['mmseg']),
                 'slide inference: ours and mmseg\'s scores are identical')


def vit_rate(report, model, args, device, size):
    """bf16 matmul rate of this GPU vs the frozen ViT's achieved rate."""
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    medians = report.timings(time_interleaved(
        {'bf16 matmul 8192^3': lambda: a @ b}, 10, device))
    matmul = 2 * n**3 / medians['bf16 matmul 8192^3']
    crops = torch.randn(args.batch, 3, size, size, device=device)
    flops = count_flops(lambda: model.image_encoder(crops))

    def encode():
        with torch.no_grad(), torch.autocast('cuda', dtype=torch.bfloat16):
            model.image_encoder(crops)

    synchronize(device)
    medians = report.timings(time_interleaved(
        {f'image encoder, bf16, batch {args.batch}': encode}, 10, device))
    achieved = flops / next(iter(medians.values()))
    fraction = achieved / matmul
    report.value('bf16 matmul rate', f'{matmul / 1e12:.0f} TFLOP/s')
    report.value('frozen ViT-B/16 rate', f'{achieved / 1e12:.0f} TFLOP/s = '
                 f'{fraction * 100:.0f}% of it  [target >= 40%: '
                 f'{"met" if fraction >= 0.4 else "MISSED"}]')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, repeats=3)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--images', type=int, default=3)
    parser.add_argument('--skip-training', action='store_true')
    args = parser.parse_args()
    device = torch.device(args.device)
    report = Report('Whole model (ViT-B/16 COCO-Stuff config)', device)
    model = build_segmentor(segmentor_config('coco-stuff', args.small),
                            device)
    size = model.test_cfg.crop_size[0]
    if not args.skip_training:
        print(f'-- training: {args.batch} crops of {size}x{size}, K = '
              f'{len(model.train_classes)}')
        training(report, model, args, device, size)
    print(f'-- inference: {args.images} images of {size}x{size}, K = '
          f'{len(model.test_classes)}')
    inference(report, model, args, device, size)
    print('-- one inference crop')
    breakdown(report, model, args, device, size)
    print('-- post-processing')
    postprocessing(report, model, args, device, size)
    if device.type == 'cuda':
        vit_rate(report, model, args, device, size)
    return report.finish()


if __name__ == '__main__':
    sys.exit(main())
