# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Zero-shot datasets on tiny copies of each real folder layout, loaded with
[LoadImageFromFile, LoadAnnotations] as mmseg loads them."""
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmseg.datasets import COCOStuffDataset, PascalContextDataset59, PascalVOCDataset
from mmseg.registry import DATASETS
from PIL import Image

from mmseg_zegot.datasets import ZegOTPascalVOC20Dataset, get_split

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
SIZE = 16


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Pipelines resolve ``LoadAnnotations`` in mmseg, as under a Runner
    with ``default_scope='mmseg'``."""
    init_default_scope('mmseg')


def label_map_of(values):
    """A SIZE×SIZE uint8 label map holding every value of ``values``."""
    assert len(values) <= SIZE * SIZE
    return np.resize(np.asarray(values, np.uint8), (SIZE, SIZE))


def write_sample(root: Path, image: str, label: str, values) -> np.ndarray:
    """Write an image and its label map under ``root``."""
    for path in (root / image, root / label):
        path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(values))
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8)).save(
        root / image)
    label_map = label_map_of(values)
    Image.fromarray(label_map).save(root / label)
    return label_map


def write_list(path: Path, names) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(names) + '\n')


def reduce_zero(label_map):
    """What ``reduce_zero_label=True`` must give: 0 -> 255, k -> k - 1."""
    out = label_map.astype(int) - 1
    out[(label_map == 0) | (label_map == 255)] = 255
    return out.astype(np.uint8)


def load(dataset, index=0):
    return dataset[index]['gt_seg_map']


@pytest.fixture
def voc_root(tmp_path):
    """VOC 2012: labels 0 (background) .. 20 and 255 (object borders)."""
    values = [*range(21), 255]
    write_sample(tmp_path, 'JPEGImages/2007_000001.jpg',
                 'SegmentationClass/2007_000001.png', values)
    write_list(tmp_path / 'ImageSets/Segmentation/train.txt',
               ['2007_000001'])
    return tmp_path


def voc_cfg(root, **kwargs):
    return dict(
        dict(
            type='ZegOTPascalVOC20Dataset',
            data_root=str(root),
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass'),
            ann_file='ImageSets/Segmentation/train.txt',
            pipeline=PIPELINE),
        **kwargs)


def test_voc20_drops_background_and_carries_the_split(voc_root):
    dataset = DATASETS.build(voc_cfg(voc_root))
    assert (dataset.img_suffix, dataset.seg_map_suffix) == ('.jpg', '.png')
    assert dataset.reduce_zero_label
    assert len(dataset) == 1
    raw = np.array(Image.open(voc_root / 'SegmentationClass/2007_000001.png'))
    gt = load(dataset)
    np.testing.assert_array_equal(gt, reduce_zero(raw))
    assert set(np.unique(gt)) == set(range(20)) | {255}
    assert gt[raw == 0].tolist() == [255] * int((raw == 0).sum())
    assert gt[raw == 16].tolist() == [15] * int((raw == 16).sum())

    meta = dataset.metainfo
    split = get_split('voc')
    assert meta['classes'] == PascalVOCDataset.METAINFO['classes'][1:]
    assert meta['palette'] == PascalVOCDataset.METAINFO['palette'][1:]
    assert meta['reduce_zero_label'] is True and meta['label_map'] is None
    assert meta['zero_shot_split'] == 'voc'
    assert meta['seen_classes'] == split.seen
    assert meta['unseen_classes'] == ('pottedplant', 'sheep', 'sofa',
                                      'train', 'tvmonitor')


def test_voc20_fully_supervised_and_none(voc_root):
    full = DATASETS.build(voc_cfg(voc_root, fully_supervised=True))
    assert full.metainfo['unseen_classes'] == ()
    assert full.metainfo['seen_classes'] == get_split('voc').classes
    assert full.metainfo['zero_shot_split'] == 'voc-fully-supervised'
    none = DATASETS.build(voc_cfg(voc_root, zero_shot_split=None))
    assert none.metainfo['unseen_classes'] == ()
    assert none.metainfo['zero_shot_split'] == 'fully-supervised'


@pytest.mark.parametrize('kwargs,fragments', [
    (dict(zero_shot_split='context59'),
     ["`zero_shot_split` 'context59' does not match", '59 vs 20',
      "'bag'", "'diningtable'"]),
    (dict(metainfo=dict(classes=PascalVOCDataset.METAINFO['classes'][1:11])),
     ["`zero_shot_split` 'voc'", '20 vs 10', "'pottedplant'"]),
    (dict(zero_shot_split=dict(
        classes=tuple(reversed(PascalVOCDataset.METAINFO['classes'][1:])),
        unseen_classes=['sofa'])),
     ['same names in a different order']),
])
def test_split_that_does_not_match_the_dataset_is_refused(
        voc_root, kwargs, fragments):
    with pytest.raises(ValueError) as info:
        DATASETS.build(voc_cfg(voc_root, **kwargs))
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize('kwargs,match', [
    (dict(zero_shot_split=dict(unseen=['sofa'])), "needs 'unseen_classes'"),
    (dict(zero_shot_split=['sofa']), 'must be a split name'),
    (dict(zero_shot_split=dict(unseen_classes=['sofas'])),
     r"`unseen_classes` \['sofas'\]"),
    (dict(metainfo=dict(unseen_classes=['sheep'])),
     '`metainfo.unseen_classes`'),
])
def test_malformed_split_arguments(voc_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DATASETS.build(voc_cfg(voc_root, **kwargs))


def test_voc20_with_the_transform_hides_unseen_pixels(voc_root):
    pipeline = PIPELINE + [
        dict(type='ZegOTZeroShotLabels', zero_shot_split='voc')
    ]
    dataset = DATASETS.build(voc_cfg(voc_root, pipeline=pipeline))
    raw = np.array(Image.open(voc_root / 'SegmentationClass/2007_000001.png'))
    expected = reduce_zero(raw)
    expected[expected >= 15] = 255  # pottedplant .. tvmonitor are 15..19
    np.testing.assert_array_equal(load(dataset), expected)


def test_context59_layout(tmp_path):
    """mmseg's pascal_context converter writes 0 (background) .. 59."""
    write_sample(tmp_path, 'JPEGImages/2008_000002.jpg',
                 'SegmentationClassContext/2008_000002.png', range(60))
    write_list(tmp_path / 'ImageSets/SegmentationContext/train.txt',
               ['2008_000002'])
    dataset = DATASETS.build(
        dict(
            type='ZegOTPascalContext59Dataset',
            data_root=str(tmp_path),
            data_prefix=dict(
                img_path='JPEGImages',
                seg_map_path='SegmentationClassContext'),
            ann_file='ImageSets/SegmentationContext/train.txt',
            pipeline=PIPELINE))
    assert (dataset.img_suffix, dataset.seg_map_suffix) == ('.jpg', '.png')
    assert dataset.reduce_zero_label
    assert dataset.metainfo['classes'] == PascalContextDataset59.METAINFO[
        'classes']
    raw = np.array(
        Image.open(tmp_path / 'SegmentationClassContext/2008_000002.png'))
    gt = load(dataset)
    np.testing.assert_array_equal(gt, reduce_zero(raw))
    assert set(np.unique(gt)) == set(range(59)) | {255}
    meta = dataset.metainfo
    assert meta['classes'] == PascalContextDataset59.METAINFO['classes']
    assert meta['zero_shot_split'] == 'context59'
    assert len(meta['seen_classes']) == 49
    assert meta['unseen_classes'] == get_split('context59').unseen
    assert 'tvmonitor' in meta['unseen_classes']


def test_coco_stuff_layout(tmp_path):
    """*_labelTrainIds.png hold train IDs 0..170 and 255, kept as they are."""
    name = '000000000009'
    write_sample(tmp_path, f'images/train2017/{name}.jpg',
                 f'annotations/train2017/{name}_labelTrainIds.png',
                 [*range(171), 255])
    dataset = DATASETS.build(
        dict(
            type='ZegOTCOCOStuffDataset',
            data_root=str(tmp_path),
            data_prefix=dict(
                img_path='images/train2017',
                seg_map_path='annotations/train2017'),
            pipeline=PIPELINE))
    assert isinstance(dataset, COCOStuffDataset)
    raw = np.array(
        Image.open(tmp_path / f'annotations/train2017/{name}_labelTrainIds.png'))
    np.testing.assert_array_equal(load(dataset), raw)
    meta = dataset.metainfo
    assert meta['classes'] == COCOStuffDataset.METAINFO['classes']
    assert meta['zero_shot_split'] == 'coco-stuff'
    assert (len(meta['seen_classes']), len(meta['unseen_classes'])) == (156,
                                                                        15)
    assert {'playingfield', 'wall-concrete'} <= set(meta['unseen_classes'])


@pytest.fixture
def toy_root(tmp_path):
    write_sample(tmp_path, 'img_dir/train/a.png', 'ann_dir/train/a.png',
                 [0, 1, 2, 3, 255])
    return tmp_path


def toy_cfg(root, **kwargs):
    return dict(
        type='ZegOTZeroShotDataset',
        data_root=str(root),
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        img_suffix='.png',
        pipeline=PIPELINE,
        **kwargs)


def test_generic_dataset_with_a_custom_split(toy_root):
    classes = ('cat', 'dog', 'grass', 'sky')
    dataset = DATASETS.build(
        toy_cfg(
            toy_root,
            metainfo=dict(classes=classes),
            zero_shot_split=dict(unseen_classes=['sky', 'dog'], name='pets')))
    raw = np.array(Image.open(toy_root / 'ann_dir/train/a.png'))
    np.testing.assert_array_equal(load(dataset), raw)
    meta = dataset.metainfo
    assert meta['classes'] == classes and len(meta['palette']) == 4
    assert meta['seen_classes'] == ('cat', 'grass')
    assert meta['unseen_classes'] == ('dog', 'sky')
    assert meta['zero_shot_split'] == 'pets'


def test_generic_dataset_reduce_zero_label_and_default_split(toy_root):
    dataset = DATASETS.build(
        toy_cfg(
            toy_root,
            metainfo=dict(classes=('cat', 'dog', 'grass')),
            reduce_zero_label=True))
    raw = np.array(Image.open(toy_root / 'ann_dir/train/a.png'))
    np.testing.assert_array_equal(load(dataset), reduce_zero(raw))
    assert dataset.metainfo['seen_classes'] == ('cat', 'dog', 'grass')
    assert dataset.metainfo['unseen_classes'] == ()


def test_generic_dataset_needs_classes(toy_root):
    with pytest.raises(ValueError, match=r'metainfo=dict\(classes'):
        DATASETS.build(toy_cfg(toy_root))


def test_split_is_checked_before_the_file_list_is_read(voc_root, tmp_path):
    """A wrong split fails before the (possibly long) file listing, which
    here would fail; ``lazy_init`` still defers the listing."""
    with pytest.raises(ValueError, match='does not match'):
        DATASETS.build(
            dict(type='ZegOTCOCOStuffDataset', data_root=str(tmp_path),
                 data_prefix=dict(img_path='missing', seg_map_path='x'),
                 zero_shot_split='voc'))
    lazy = ZegOTPascalVOC20Dataset(
        **{k: v for k, v in voc_cfg(voc_root).items() if k != 'type'},
        lazy_init=True)
    assert lazy.metainfo['zero_shot_split'] == 'voc'
    assert not lazy._fully_initialized and lazy.data_list == []
    lazy.full_init()
    assert len(lazy) == 1


@pytest.mark.parametrize('dataset_type', [
    'ZegOTPascalVOC20Dataset', 'ZegOTPascalContext59Dataset',
    'ZegOTCOCOStuffDataset'
])
def test_lazy_build_without_data_then_clear_error(tmp_path, dataset_type):
    cfg = dict(type=dataset_type, data_root=str(tmp_path / 'missing'),
               data_prefix=dict(img_path='JPEGImages', seg_map_path='labels'),
               pipeline=PIPELINE, lazy_init=True)
    if dataset_type != 'ZegOTCOCOStuffDataset':
        cfg['ann_file'] = 'list.txt'
    dataset = DATASETS.build(cfg)
    assert dataset.metainfo['unseen_classes']
    with pytest.raises(FileNotFoundError, match='image folder .*missing'):
        dataset.full_init()
    (tmp_path / 'missing' / 'JPEGImages').mkdir(parents=True)
    if dataset_type != 'ZegOTCOCOStuffDataset':
        with pytest.raises(FileNotFoundError, match='image list .*list.txt'):
            dataset.full_init()
