# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Shared fixtures: tiny open_clip configurations built inline (no downloads)."""
import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmseg_zegot  # noqa: F401  (registers components, installs the mmcv shim)

REPO = Path(__file__).resolve().parents[1]

#: A 2-layer, width-64 open_clip CLIP: ViT with 8 px patches at 32 px, and a
#: 2-layer text transformer with the real CLIP vocabulary/tokenizer.
TINY_CLIP_CFG = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, layers=2, width=64, head_width=32,
                    patch_size=8, mlp_ratio=2.0),
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2,
                  layers=2, mlp_ratio=2.0),
)


@pytest.fixture
def tiny_clip_cfg() -> dict:
    """A fresh copy of :data:`TINY_CLIP_CFG` for each test."""
    return copy.deepcopy(TINY_CLIP_CFG)


def make_voc_dataset(root, num_train: int = 6, num_val: int = 2,
                     size=(40, 48), num_classes: int = 21,
                     seed: int = 0) -> str:
    """Write a tiny dataset in PASCAL VOC 2012's folder layout.

    Each image shows a few rectangles whose colour is a function of their
    class index on a grey background (class 0); labels are single-channel
    PNGs of class indices, with a 255 border around every object as VOC has.

    Returns:
        str: The data root (``root``).
    """
    import os.path as osp
    from pathlib import Path

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    root = Path(root)
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    height, width = size
    colours = rng.integers(0, 256, size=(num_classes, 3))
    names = {'train': [], 'val': []}
    for index in range(num_train + num_val):
        split = 'train' if index < num_train else 'val'
        name = f'2007_{index:06d}'
        image = np.full((height, width, 3), 128, np.uint8)
        label = np.zeros((height, width), np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            cls = int(rng.integers(1, num_classes))
            y0, x0 = rng.integers(0, height // 2), rng.integers(0, width // 2)
            y1 = y0 + rng.integers(8, height // 2 + 1)
            x1 = x0 + rng.integers(8, width // 2 + 1)
            image[y0:y1, x0:x1] = colours[cls]
            label[y0:y1, x0:x1] = 255
            label[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = cls
        Image.fromarray(image).save(root / 'JPEGImages' / f'{name}.jpg',
                                    quality=95)
        Image.fromarray(label).save(root / 'SegmentationClass' / f'{name}.png')
        names[split].append(name)
    for split, split_names in names.items():
        (root / 'ImageSets' / 'Segmentation' / f'{split}.txt').write_text(
            '\n'.join(split_names) + '\n')
    return osp.abspath(root)


def run_tool(tool, *args, cwd=REPO) -> str:
    """Run ``tools/<tool>`` the way a user does: no PYTHONPATH, torch's
    default ``weights_only=True`` loading. Returns stdout + stderr."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')}
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / tool), *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result.stdout + result.stderr
