# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The toy world as a dataset: the split 'toy' the project registers, and
worlds generated with other categories (issue 18: never read silently with
the default 12-name mapping)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS
from PIL import Image

from mmseg_zegot.datasets import SPLITS, get_split, register_split, resolve_split
from projects.toy_world.toy_world import (
    CLASS_NAMES,
    TOY_SPLIT,
    ZegOTToyWorldDataset,
    generate_world,
)

PROJECT = Path(__file__).resolve().parents[1]
REPO = PROJECT.parents[1]


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


def test_the_package_registers_the_dataset_and_the_split():
    assert DATASETS.get('ZegOTToyWorldDataset') is ZegOTToyWorldDataset
    assert SPLITS['toy'] is TOY_SPLIT
    # Registering it again (a second import) changes nothing.
    assert register_split(TOY_SPLIT) is TOY_SPLIT
    assert SPLITS['toy'] is TOY_SPLIT


def test_toy_split_and_named_resplits():
    toy = get_split('toy')
    assert toy.classes == CLASS_NAMES and len(toy.seen) == 9
    assert toy.unseen == ('star', 'moon', 'flower')
    other = resolve_split(dict(name='toy', unseen_classes=['ring', 'cloud']))
    assert other.classes == CLASS_NAMES
    assert other.unseen == ('ring', 'cloud') and len(other.seen) == 10
    with pytest.raises(ValueError, match='unseen_classes'):
        resolve_split(dict(name='toy', unseen_classes=['dragon']))
    with pytest.raises(ValueError, match='zero_shot_split'):
        resolve_split(dict(name='toy'))


@pytest.fixture(scope='module')
def subset_world(tmp_path_factory):
    """A toy world generated with 3 categories, in another order."""
    root = tmp_path_factory.mktemp('world') / 'world'
    generate_world(str(root), num_train=3, num_val=2, size=(32, 32),
                   categories=['moon', 'circle', 'star'])
    return root


def toy_dataset(root, **kwargs):
    return ZegOTToyWorldDataset(
        data_root=str(root),
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=[dict(type='LoadAnnotations')], **kwargs)


def test_toy_world_of_other_categories_is_not_read_as_the_default(
        subset_world):
    """The fixed 12-name mapping read such a world without a word."""
    with pytest.raises(ValueError) as info:
        toy_dataset(subset_world)
    assert str(info.value) == (
        "ZegOTToyWorldDataset: `zero_shot_split` 'toy' does not fit the "
        f'world: the world at {subset_world} was generated with the classes '
        "['moon', 'circle', 'star'] (its world.json; label k is the k-th). "
        "Set the split of the world's classes on every dataset and the "
        "model, e.g. zero_shot_split=dict(name='toy-custom', classes=['moon',"
        " 'circle', 'star'], unseen_classes=[...]) (the variable "
        '`zero_shot_split` of projects/toy_world/configs/_base_/datasets/'
        'zegot_toy.py), or generate the world with the default categories.')
    with pytest.raises(ValueError, match=r"`metainfo.classes` \['circle', "
                       r"'moon', 'star'\] disagrees: the world at"):
        toy_dataset(subset_world, metainfo=dict(
            classes=['circle', 'moon', 'star']))


def test_toy_world_labels_index_the_world_classes(subset_world):
    split = dict(classes=['moon', 'circle', 'star'], unseen_classes=['star'])
    dataset = toy_dataset(subset_world, zero_shot_split=split)
    assert dataset.metainfo['classes'] == ('moon', 'circle', 'star')
    assert dataset.metainfo['unseen_classes'] == ('star', )
    assert dataset.label_map is None
    stored = np.asarray(Image.open(dataset.get_data_info(0)['seg_map_path']))
    label = dataset[0]['gt_seg_map']
    objects = (stored > 0) & (stored < 255)
    np.testing.assert_array_equal(label[objects], stored[objects] - 1)
    assert set(np.unique(label[~objects])) <= {255}


def test_check_dataset_reports_the_world_mismatch(subset_world):
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'check_dataset.py'),
         'projects/toy_world/configs/zegot_toy.py', '--cfg-options',
         *[f'{loader}.dataset.data_root={subset_world}'
           for loader in ('train_dataloader', 'val_dataloader',
                          'test_dataloader')]],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout[-3000:]
    assert ("`zero_shot_split` {'name': 'toy', 'unseen_classes': ['star', "
            "'moon', 'flower']} does not fit the world") in result.stdout
