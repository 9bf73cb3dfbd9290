# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""A tiny ZegOT on the shipped VOC config (for the inference tests): a tiny
CLIP written to files, a config inheriting ``zegot_vitb16_voc.py``, an
untrained checkpoint, and small PNG images."""
import json
from pathlib import Path

import numpy as np
import torch
from conftest import REPO, TINY_CLIP_CFG, make_layout_dataset
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from PIL import Image

from mmseg_zegot.models.utils import build_clip
from mmseg_zegot.utils import to_plain

CONFIG_TEXT = """
_base_ = '{base}'
clip = dict(model_name='tiny', model_cfg='{clip_cfg}',
            pretrained={pretrained!r}, quick_gelu=False)
model = dict(
    data_preprocessor=dict(size=(32, 32)),
    image_encoder=dict(out_indices=(0, 1), **clip),
    text_encoder=dict(prompt_length=4, **clip),
    test_cfg=dict(_delete_=True, mode='whole'))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root='{data_root}', pipeline=test_pipeline))
"""


def write_tiny_zegot(folder, data_root='data/none', pretrained=True) -> str:
    """Write a tiny CLIP (JSON config + weights) and a ZegOT config using it
    into ``folder``; returns the config path. ``pretrained=False`` leaves
    the encoders' ``pretrained`` None."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clip_cfg, clip_weights = folder / 'clip.json', folder / 'clip.pth'
    if not clip_weights.exists():
        torch.manual_seed(0)
        torch.save(build_clip('tiny', TINY_CLIP_CFG).state_dict(),
                   clip_weights)
        clip_cfg.write_text(json.dumps(TINY_CLIP_CFG))
    name = 'tiny_zegot.py' if pretrained else 'tiny_zegot_no_clip.py'
    config = folder / name
    config.write_text(CONFIG_TEXT.format(
        base=REPO / 'configs' / 'zegot' / 'zegot_vitb16_voc.py',
        clip_cfg=clip_cfg,
        pretrained=str(clip_weights) if pretrained else None,
        data_root=data_root))
    return str(config)


def build_model(config: str):
    """The segmentor of ``config``, random weights, eval mode."""
    init_default_scope('mmseg')
    return MODELS.build(Config.fromfile(config).model).eval()


def save_checkpoint(config: str, path, meta=None, seed: int = 0):
    """Save a full (training-style) checkpoint of the model at
    initialisation (CLIP loaded), like ``tools/init_checkpoint.py``, with
    the prompt contexts redrawn larger so that predictions vary. Returns
    the model."""
    torch.manual_seed(seed)
    model = build_model(config)
    model.init_weights()
    with torch.no_grad():
        model.text_encoder.contexts.normal_(std=1.0)
    torch.save(to_plain(dict(meta=dict(meta or {}, iter=0),
                             state_dict=model.state_dict())), path)
    return model


def write_tiny_run(folder, num_val: int):
    """A tiny VOC-layout dataset (``num_val`` test images of 40×48), a tiny
    ZegOT config reading it and an untrained checkpoint of that config.

    Returns:
        tuple: The config path, the checkpoint path (str) and the data root.
    """
    data_root = make_layout_dataset(folder / 'voc', 'voc', num_train=1,
                                    num_val=num_val, size=(40, 48))
    config = write_tiny_zegot(folder, data_root=data_root)
    checkpoint = folder / 'checkpoint.pth'
    save_checkpoint(config, checkpoint)
    return config, str(checkpoint), data_root


def write_images(folder, sizes, seed: int = 0):
    """Random-block RGB PNG images of the given (H, W) sizes; returns the
    paths, sorted by name."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, (height, width) in enumerate(sizes):
        blocks = rng.integers(0, 256, (height // 8, width // 8, 3), np.uint8)
        image = np.kron(blocks, np.ones((8, 8, 1), np.uint8))
        path = folder / f'image_{i}.png'
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths
