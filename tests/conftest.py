# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Shared fixtures: tiny open_clip configurations built inline (no downloads)."""
import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.logging import MMLogger
from torch.utils._python_dispatch import TorchDispatchMode

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


class RecordOps(TorchDispatchMode):
    """Record the name of every aten op run inside the ``with`` block
    (``ops``), e.g. to find host synchronisations
    (``aten._local_scalar_dense``) or count the work done."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.fixture
def tiny_clip_cfg() -> dict:
    """A fresh copy of :data:`TINY_CLIP_CFG` for each test."""
    return copy.deepcopy(TINY_CLIP_CFG)


@pytest.fixture
def log_messages():
    """The messages logged through ``print_log(logger='current')`` while
    the test runs."""
    messages = []

    def record(entry) -> bool:
        messages.append(entry.getMessage())
        return True

    logger = MMLogger.get_current_instance()
    logger.addFilter(record)
    yield messages
    logger.removeFilter(record)


#: Folder layouts of the real datasets, as mmseg's converters write them:
#: (image dir, label dir, label suffix, list file dir or None, number of
#: labelled classes, whether label 0 is a background that is ignored).
LAYOUTS = dict(
    voc=dict(images='JPEGImages', labels='SegmentationClass',
             label_suffix='.png', lists='ImageSets/Segmentation',
             num_classes=20, background=True),
    context59=dict(images='JPEGImages', labels='SegmentationClassContext',
                   label_suffix='.png', lists='ImageSets/SegmentationContext',
                   num_classes=59, background=True),
    coco_stuff=dict(images='images', labels='annotations',
                    label_suffix='_labelTrainIds.png', lists=None,
                    num_classes=171, background=False),
)


def make_layout_dataset(root, layout: str = 'voc', num_train: int = 6,
                        num_val: int = 2, size=(40, 48), seed: int = 0,
                        classes=None) -> str:
    """Write a tiny dataset in the folder layout of a real benchmark.

    Each image shows 1-3 rectangles whose colour is a function of their class
    on a grey background. Labels follow the layout's convention: VOC and
    Context write 0 for background and ``k + 1`` for class ``k`` (VOC also a
    255 border around objects), COCO-Stuff writes class indices with 255
    for unlabelled pixels. VOC also gets an SBD-style ``SegmentationClassAug``
    copy and ``aug.txt``; COCO-Stuff uses ``train2017``/``val2017`` folders.

    Args:
        layout (str): A key of :data:`LAYOUTS`.
        size (tuple[int, int] | list[tuple[int, int]]): The (height, width)
            of every image, or a list: the training images take its sizes in
            turn, and so do the validation images.
        classes (Sequence[int], optional): Class indices (0-based, dataset
            order) to draw from; all by default.

    Returns:
        str: The data root (``root``).
    """
    from pathlib import Path

    import numpy as np
    from PIL import Image

    spec = LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    root = Path(root)
    sizes = [size] if isinstance(size, tuple) else list(size)
    colours = rng.integers(0, 256, size=(spec['num_classes'], 3))
    classes = list(range(spec['num_classes'])) if classes is None else list(
        classes)
    offset = 1 if spec['background'] else 0
    names = {'train': [], 'val': []}
    for index in range(num_train + num_val):
        split = 'train' if index < num_train else 'val'
        name = f'2007_{index:06d}'
        height, width = sizes[(index if split == 'train' else index -
                               num_train) % len(sizes)]
        image = np.full((height, width, 3), 128, np.uint8)
        label = np.full((height, width), 0 if offset else 255, np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            cls = int(classes[rng.integers(len(classes))])
            y0, x0 = rng.integers(0, height // 2), rng.integers(0, width // 2)
            y1 = y0 + rng.integers(8, height // 2 + 1)
            x1 = x0 + rng.integers(8, width // 2 + 1)
            image[y0:y1, x0:x1] = colours[cls]
            label[y0:y1, x0:x1] = 255 if layout == 'voc' else cls + offset
            label[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = cls + offset
        sub = f'/{split}2017' if spec['lists'] is None else ''
        for folder, array, suffix in (
                (spec['images'], image, '.jpg'),
                (spec['labels'], label, spec['label_suffix'])):
            path = root / f'{folder}{sub}' / f'{name}{suffix}'
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(path, **(
                dict(quality=95) if suffix == '.jpg' else {}))
        names[split].append(name)
    if spec['lists'] is not None:
        lists = root / spec['lists']
        lists.mkdir(parents=True, exist_ok=True)
        for split, split_names in names.items():
            (lists / f'{split}.txt').write_text('\n'.join(split_names) + '\n')
    if layout == 'voc':
        import shutil
        shutil.copytree(root / spec['labels'], root / 'SegmentationClassAug')
        (root / spec['lists'] / 'aug.txt').write_text(
            '\n'.join(names['train']) + '\n')
    return str(root.resolve())


def make_voc_dataset(root, num_train: int = 6, num_val: int = 2,
                     size=(40, 48), num_classes: int = 21,
                     seed: int = 0) -> str:
    """A tiny PASCAL VOC 2012 dataset (labels 0..``num_classes - 1``,
    background 0, 255 borders): :func:`make_layout_dataset` ``'voc'``."""
    return make_layout_dataset(root, 'voc', num_train, num_val, size, seed,
                               classes=range(num_classes - 1))


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
