# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The procedural toy world: determinism, label format, VOC layout."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets import BaseSegDataset, PascalVOCDataset
from mmseg.datasets.transforms import LoadAnnotations
from PIL import Image

from projects.toy_world.toy_world import world as tw

PROJECT = Path(__file__).resolve().parents[1]

K = len(tw.CLASS_NAMES)


def _hashes(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob('*')) if p.is_file()
    }


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """A world written by the command line tool."""
    root = tmp_path_factory.mktemp('toy_world')
    result = subprocess.run(
        [sys.executable, str(PROJECT / 'tools' / 'generate_world.py'),
         '--out-dir', str(root), '--seed', '0', '--num-train', '48',
         '--num-val', '12', '--no-progress'],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_same_seed_same_bytes(world, tmp_path):
    tw.generate_world(str(tmp_path), seed=0, num_train=48, num_val=12)
    first, second = _hashes(world), _hashes(tmp_path)
    assert len(first) == 2 * 60 + 3  # images, labels, 2 split files, json
    assert first == second


def test_other_seed_other_images(world, tmp_path):
    tw.generate_world(str(tmp_path), seed=1, num_train=48, num_val=12)
    first, second = _hashes(world), _hashes(tmp_path)
    assert first.keys() == second.keys()
    images = [k for k in first if k.startswith('JPEGImages')]
    assert all(first[k] != second[k] for k in images)


def test_val_images_do_not_depend_on_num_train(world, tmp_path):
    tw.generate_world(str(tmp_path), seed=0, num_train=3, num_val=12)
    first, second = _hashes(world), _hashes(tmp_path)
    val = [k for k in second if 'val_' in k]
    assert len(val) == 24
    assert all(first[k] == second[k] for k in val)


def test_labels_and_world_json(world):
    info = json.loads((world / 'world.json').read_text())
    assert info['classes'] == list(tw.CLASS_NAMES)
    assert info['image_size'] == [64, 64]
    assert (info['seed'], info['num_train'], info['num_val']) == (0, 48, 12)
    assert info['img_suffix'] == '.png' and info['reduce_zero_label']
    seen = set()
    for path in sorted((world / 'SegmentationClass').glob('*.png')):
        label = np.asarray(Image.open(path))
        assert label.shape == (64, 64) and label.dtype == np.uint8
        values = set(np.unique(label).tolist())
        assert values <= set(range(K + 1)) | {255}
        seen |= values
    assert seen == set(range(K + 1)) | {255}  # every category appears
    pixels = info['pixels']
    assert all(pixels['train'][n] + pixels['val'][n] > 0
               for n in tw.CLASS_NAMES)
    assert sum(pixels['val'].values()) == 12 * 64 * 64


def test_labels_match_the_drawn_image():
    """Occlusion: each object's label is where its pixels were drawn last."""
    rng = tw.image_rng(3, 'train', 0)
    yy, xx = np.mgrid[0:64, 0:64]
    specs = [
        tw._Spec(tw.CATEGORIES[0], 1, (32.0, 32.0), 20.0, 0.0),  # circle
        tw._Spec(tw.CATEGORIES[1], 2, (32.0, 40.0), 12.0, 0.0),  # square
    ]
    _, label, objects = tw.render_image(rng, specs)
    square = tw.shape_mask('square', yy, xx, (32.0, 40.0), 12.0, 0.0)
    circle = tw.shape_mask('circle', yy, xx, (32.0, 32.0), 20.0, 0.0)
    assert set(np.unique(label[square]).tolist()) == {2, 255}
    assert set(np.unique(label[circle & ~square]).tolist()) == {1, 255}
    assert (label[~(circle | square)] == 0).all()
    assert objects[1].visible == square.sum()
    assert objects[0].visible == (circle & ~square).sum()
    # The 255 band is one pixel wide, on the object side of every outline
    # (both sides where objects touch): row 31 of the circle starts at x=12,
    # the square's at x=31.
    np.testing.assert_array_equal(label[31, 11:14], [0, 255, 1])
    np.testing.assert_array_equal(label[31, 29:33], [1, 255, 255, 2])


class _Phase:
    """Stands in for the generator's rng: a fixed texture phase."""

    def __init__(self, oy: int, ox: int):
        self.offsets = np.array([oy, ox])

    def integers(self, low, high, size):
        return self.offsets


def _appearances(texture: str, flip: bool = False) -> set:
    """Every 32×32 pattern ``texture`` takes over all phases (mirrored
    left-right with ``flip``), with its complement (the two colours are
    random, so either may be the second)."""
    yy, xx = np.mgrid[0:32, 0:32]
    found = set()
    for oy in range(24):
        for ox in range(24):
            pattern = tw.texture_pattern(texture, yy, xx, (16.0, 16.0),
                                         _Phase(oy, ox))
            if flip:
                pattern = pattern[:, ::-1]
            found |= {pattern.tobytes(), (~pattern).tobytes()}
    return found


def test_flipped_textures_stay_their_own_category():
    """RandomFlip must not dress a category in another one's texture (the
    ring's up-diagonal, flipped, used to be the heart's down-diagonal, and
    every model trained with flips confused the two)."""
    # speckle is random per pixel, rings centre on the object (both
    # mirror onto themselves).
    textures = [c.texture for c in tw.CATEGORIES
                if c.texture not in ('speckle', 'rings')]
    assert len(set(textures)) == len(textures)
    looks = {t: _appearances(t) for t in textures}
    for texture in textures:
        flipped = _appearances(texture, flip=True)
        others = [t for t in textures if t != texture and flipped & looks[t]]
        assert not others, (texture, others)


def _read_with_mmseg(dataset):
    sample = dataset[0]
    return sample['img'], sample['gt_seg_map'], sample['img_path']


def test_read_by_mmseg_voc_layout(world):
    pipeline = [LoadImageFromFile(), LoadAnnotations()]
    common = dict(
        data_root=str(world),
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        img_suffix='.png', seg_map_suffix='.png', pipeline=pipeline)
    voc = PascalVOCDataset(ann_file='ImageSets/Segmentation/val.txt',
                           **common)
    assert len(voc) == 12
    toy = BaseSegDataset(ann_file='ImageSets/Segmentation/train.txt',
                         metainfo=dict(classes=tw.CLASS_NAMES),
                         reduce_zero_label=True, **common)
    assert len(toy) == 48 and toy.metainfo['classes'] == tw.CLASS_NAMES
    img, seg, path = _read_with_mmseg(toy)
    assert path.endswith('JPEGImages/train_000000.png')
    # mmcv reads BGR; the generator draws RGB.
    rgb, label, _ = tw.sample_scene(tw.image_rng(0, 'train', 0))
    np.testing.assert_array_equal(img[..., ::-1], rgb)
    reduced = label.astype(np.int64) - 1
    reduced[(label == 0) | (label == 255)] = 255
    np.testing.assert_array_equal(seg, reduced)


def test_choose_unseen():
    names = list(tw.CLASS_NAMES)
    unseen = tw.choose_unseen(names, 3, seed=0)
    assert unseen == tw.choose_unseen(names, 3, seed=0)
    assert len(set(unseen)) == 3 and set(unseen) <= set(names)
    assert unseen == [n for n in names if n in unseen]  # dataset order
    picks = {tuple(tw.choose_unseen(names, 3, seed=s)) for s in range(8)}
    assert len(picks) > 1
    with pytest.raises(ValueError):
        tw.choose_unseen(names, K, seed=0)


def test_category_subset(tmp_path):
    info = tw.generate_world(str(tmp_path), seed=0, num_train=6, num_val=2,
                             size=(48, 40), categories=['star', 'moon'])
    assert info['classes'] == ['star', 'moon']
    label = np.asarray(Image.open(tmp_path / 'SegmentationClass' /
                                  'train_000000.png'))
    assert label.shape == (48, 40)
    assert set(np.unique(label).tolist()) <= {0, 1, 2, 255}
    with pytest.raises(ValueError):
        tw.get_categories(['star', 'unicorn'])
