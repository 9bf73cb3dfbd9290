# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Shared set-up of the side-by-side benchmarks in this folder: arguments,
models and inputs. The measuring (interleaved timing, memory, FLOPs, the
report) is :mod:`mmseg_zegot.utils.benchmark`.

Importing this module puts the repository root first on ``sys.path``, so
``python benchmarks/X.py`` measures this checkout.

Models: :func:`segmentor_config` reads a ViT-B/16 config of
``configs/zegot`` with random CLIP weights (nothing to download; speed does
not depend on the weights), or, with ``small=True``, the same config with a
2-layer width-64 CLIP and 64 px crops.
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from mmseg_zegot.utils import load_config  # noqa: E402

#: A 2-layer, width-64 CLIP (8 px patches) with CLIP's real tokenizer.
TINY_CLIP = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, layers=2, width=64, head_width=32,
                    patch_size=8, mlp_ratio=2.0),
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2,
                  layers=2, mlp_ratio=2.0))
SMALL_CROP = 64


def default_device() -> str:
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def add_common_args(parser: argparse.ArgumentParser, repeats: int = 5):
    parser.add_argument('--device', default=default_device(),
                        help='cpu or cuda (default: cuda if available)')
    parser.add_argument('--repeats', type=int, default=repeats,
                        help='timed calls of each implementation, '
                        'interleaved (default: %(default)s)')
    parser.add_argument('--small', action='store_true',
                        help='CPU-sized shapes (about a minute on 2 cores)')


def segmentor_config(dataset: str = 'coco-stuff', small: bool = False):
    """The ``model`` of ``configs/zegot/zegot_vitb16_<dataset>.py`` with
    random CLIP weights (``pretrained=None``); ``small``: a tiny CLIP and
    ``SMALL_CROP`` px crops (slide stride 2/3 of it, as 341/512)."""
    cfg = load_config(
        osp.join(REPO, 'configs', 'zegot', f'zegot_vitb16_{dataset}.py'))
    model = cfg.model
    model.image_encoder.pretrained = None
    model.text_encoder.pretrained = None
    if small:
        tiny = dict(model_name='tiny', model_cfg=TINY_CLIP, quick_gelu=False)
        model.image_encoder.update(tiny, out_indices=(0, 1))
        model.text_encoder.update(tiny)
        crop = (SMALL_CROP, SMALL_CROP)
        model.data_preprocessor.size = crop
        model.test_cfg = dict(mode='slide', crop_size=crop,
                              stride=(SMALL_CROP * 2 // 3, ) * 2)
    return model


def build_segmentor(model_cfg, device: torch.device, seed: int = 0):
    """Build and initialise a segmentor (head init, DLFA from CLIP)."""
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    model.decode_head.init_weights()
    model.decode_head.dlfa.init_from_clip(
        *model.image_encoder.output_projection())
    return model.to(device)


def image_batch(height: int, width: int, num: int, num_classes: int,
                device: torch.device, seed: int = 0) -> dict:
    """``test_step`` / ``train_step`` input: random uint8 images and labels."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num):
        inputs.append(torch.randint(0, 256, (3, height, width), generator=gen,
                                    dtype=torch.uint8).to(device))
        label = torch.randint(0, num_classes, (1, height, width),
                              generator=gen)
        sample = SegDataSample(gt_sem_seg=PixelData(data=label.to(device)))
        sample.set_metainfo(dict(img_shape=(height, width),
                                 ori_shape=(height, width),
                                 pad_shape=(height, width)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
