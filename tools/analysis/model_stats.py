# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Parameters, GFLOPs per crop and inference FPS of a ZegOT config.

mmseg's ``tools/analysis_tools/get_flops.py`` cannot measure ZegOT: it
traces ``model.forward(inputs)`` of a unimodal segmentor, while ZegOT's
cost splits into an image path run per crop and a text path run once per
vocabulary (cached at inference, with autograd to the prompts in training).
This tool counts each part separately with
:func:`mmseg_zegot.utils.benchmark.count_flops` (FLOPs = 2 x
multiply-accumulates of matmuls, convolutions and attention; element-wise
work is not counted):

* image encoder, per crop (B = 1);
* head forward, per crop, with the test vocabulary (all classes);
* text encoder, once per vocabulary at inference (all classes), and the
  forward of a training step (seen classes);
* inference per crop = image encoder + head (the cached text is free).

Parameters: total, trainable and per component. FPS: ``test_step`` on
random images of ``--shape`` with the config's ``test_cfg`` (slide), after
one warm-up image, text cached. The weights are the config's architecture
with random initialisation (``init_weights`` is not called, so no CLIP file
is needed; speed does not depend on the weights).

    python tools/analysis/model_stats.py configs/zegot/zegot_vitb16_voc.py \\
        [--shape 512 512] [--fps-images 10] [--device cuda] [--amp]
"""
import argparse
import os.path as osp
import sys
import time
from contextlib import nullcontext

import torch
from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from mmseg.registry import MODELS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402

from mmseg_zegot.utils import load_config  # noqa: E402
from mmseg_zegot.utils.benchmark import count_flops  # noqa: E402


def parameter_counts(model) -> dict:
    """(total, trainable) numbers of parameters per component."""
    counts = {}
    for name in ('image_encoder', 'text_encoder', 'decode_head'):
        params = list(getattr(model, name).parameters())
        counts[name] = (sum(p.numel() for p in params),
                        sum(p.numel() for p in params if p.requires_grad))
    counts['total'] = tuple(sum(v[i] for v in list(counts.values()))
                            for i in range(2))
    return counts


def random_batch(height: int, width: int, device, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, height, width), generator=gen,
                          dtype=torch.uint8).to(device)
    sample = SegDataSample(gt_sem_seg=PixelData(
        data=torch.zeros(1, height, width, dtype=torch.long, device=device)))
    sample.set_metainfo(dict(img_shape=(height, width),
                             ori_shape=(height, width),
                             pad_shape=(height, width)))
    return dict(inputs=[image], data_samples=[sample])


def flops_per_part(model, crop: tuple, device) -> dict:
    """GFLOPs of the image encoder and head per crop, and of the text
    encoder per vocabulary (inference) and per training forward."""
    model.eval()
    crop_img = torch.zeros(1, 3, *crop, device=device)
    gflops = {}
    with torch.no_grad():
        gflops['image encoder (per crop)'] = count_flops(
            lambda: model.image_encoder(crop_img)) / 1e9
        feats = model.image_encoder(crop_img)
        model._use_vocabulary(model.test_classes)
        encoder = model.text_encoder
        gflops[f'text encoder (once per vocabulary, K = '
               f'{len(model.test_classes)})'] = count_flops(
                   encoder._encode) / 1e9
        text = encoder()
        gflops[f'head (per crop, K = {len(model.test_classes)})'] = \
            count_flops(lambda: model.decode_head.forward(
                [crop_img, feats, text])) / 1e9
    model._use_vocabulary(model.train_classes)
    gflops[f'text encoder (training forward, K = '
           f'{len(model.train_classes)})'] = count_flops(
               encoder._encode) / 1e9
    model._use_vocabulary(model.test_classes)
    per_crop = [value for key, value in gflops.items() if 'per crop' in key]
    gflops['inference per crop (image encoder + head)'] = sum(per_crop)
    return gflops


def measure_fps(model, shape: tuple, num_images: int, device,
                amp: bool) -> float:
    """Images per second of ``test_step`` (text cached after warm-up)."""
    model.eval()
    batches = [random_batch(*shape, device, seed=i)
               for i in range(num_images + 1)]
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16)
                if amp else nullcontext())
    with torch.no_grad(), autocast:
        model.test_step(batches[0])
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for batch in batches[1:]:
            model.test_step(batch)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
    return num_images / (time.perf_counter() - start)


def parse_args():
    parser = argparse.ArgumentParser(
        description='Parameters, GFLOPs and FPS of a ZegOT config')
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs=2, default=None,
                        help='test image height width (default: the crop '
                        'size: test_cfg.crop_size for slide inference, else '
                        'data_preprocessor.size)')
    parser.add_argument('--fps-images', type=int, default=5,
                        help='timed images for FPS (0: skip FPS)')
    parser.add_argument('--device', default='cuda' if
                        torch.cuda.is_available() else 'cpu')
    parser.add_argument('--amp', action='store_true',
                        help='FPS under bfloat16 autocast')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings (key=value)')
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    device = torch.device(args.device)
    model = MODELS.build(cfg.model).to(device)
    if model.test_cfg.get('mode') == 'slide':
        crop = tuple(model.test_cfg.crop_size)
    else:
        crop = tuple(cfg.model.data_preprocessor.size)
    shape = tuple(args.shape) if args.shape else crop
    print(f'config: {args.config}')
    print(f'device: {device}'
          + (f' ({torch.cuda.get_device_name(device)})'
             if device.type == 'cuda' else
             f' ({torch.get_num_threads()} thread(s))'))
    print('parameters                           total    trainable')
    for name, (total, trainable) in parameter_counts(model).items():
        print(f'  {name:<24} {total:12,d} {trainable:12,d}')
    print(f'GFLOPs at a {crop[0]}x{crop[1]} crop')
    for name, value in flops_per_part(model, crop, device).items():
        print(f'  {name:<58} {value:10.3f}')
    if args.fps_images > 0:
        fps = measure_fps(model, shape, args.fps_images, device, args.amp)
        print(f'inference FPS at {shape[0]}x{shape[1]} '
              f'({model.test_cfg.get("mode", "whole")}'
              f'{", bf16 autocast" if args.amp else ""}): {fps:.3f} '
              f'images/s over {args.fps_images} images')


if __name__ == '__main__':
    main()
