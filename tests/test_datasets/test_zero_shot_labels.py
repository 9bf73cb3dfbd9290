# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""ZegOTZeroShotLabels on small label maps, one exact array per setting."""
import numpy as np
import pytest
import torch
from mmseg.registry import TRANSFORMS

from mmseg_zegot.datasets.transforms import ZegOTZeroShotLabels
from mmseg_zegot.datasets.transforms.zero_shot_labels import unseen_target
from mmseg_zegot.models.utils.zero_shot_targets import map_labels, training_label_map

CLASSES = ('cat', 'dog', 'grass', 'sky')
UNSEEN = ('dog', 'sky')  # indices 1 and 3
GT = np.array([[0, 1, 2, 3],
               [3, 3, 255, 1],
               [2, 0, 1, 255]], np.uint8)
EXPECTED = {
    'inductive': np.array([[0, 255, 2, 255],
                           [255, 255, 255, 255],
                           [2, 0, 255, 255]], np.uint8),
    'transductive': np.array([[0, 254, 2, 254],
                              [254, 254, 255, 254],
                              [2, 0, 254, 255]], np.uint8),
    'fully': GT,
}


def run(transform, gt=GT):
    results = transform(dict(gt_seg_map=gt.copy(), seg_fields=['gt_seg_map']))
    return results['gt_seg_map']


@pytest.mark.parametrize('setting', sorted(EXPECTED))
def test_each_setting_gives_the_exact_labels(setting):
    transform = TRANSFORMS.build(
        dict(type='ZegOTZeroShotLabels', setting=setting, classes=CLASSES,
             unseen_classes=UNSEEN))
    out = run(transform)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, EXPECTED[setting])


def test_unseen_target():
    assert unseen_target('inductive', 255, 254) == 255
    assert unseen_target('transductive', 255, 254) == 254
    assert unseen_target('fully', 255, 254) is None
    with pytest.raises(ValueError, match='`setting` must be one of'):
        unseen_target('semi', 255, 254)


@pytest.mark.parametrize('setting', sorted(EXPECTED))
def test_the_model_gets_the_same_targets_with_or_without_it(setting):
    """The segmentor's targets (models.utils.zero_shot_targets) follow the
    transform's rule: labels it hid map to the targets of the labels it
    got."""
    seen = torch.tensor([name not in UNSEEN for name in CLASSES])
    label_map, _ = training_label_map(seen, setting, ignore_index=255)
    transform = TRANSFORMS.build(
        dict(type='ZegOTZeroShotLabels', setting=setting, classes=CLASSES,
             unseen_classes=UNSEEN))
    targets = [
        map_labels(torch.from_numpy(gt)[None], label_map, ignore_index=255,
                   unlabeled_index=254) for gt in (GT, run(transform))
    ]
    assert torch.equal(*targets)


def test_input_is_not_modified_and_other_indices_apply():
    gt = GT.copy()
    transform = ZegOTZeroShotLabels(
        setting='transductive', classes=CLASSES, unseen_classes=['sky'],
        unlabeled_index=200, ignore_index=250)
    results = dict(gt_seg_map=gt)
    transform(results)
    np.testing.assert_array_equal(gt, GT)
    np.testing.assert_array_equal(
        results['gt_seg_map'],
        np.where(GT == 3, 200, GT).astype(np.uint8))


def test_named_split_uses_the_benchmark_indices():
    gt = np.arange(21, dtype=np.uint8).reshape(3, 7)  # 0..19 and 20
    gt[2, 6] = 255
    out = run(ZegOTZeroShotLabels(zero_shot_split='voc'), gt)
    expected = gt.copy()
    expected[np.isin(gt, [15, 16, 17, 18, 19])] = 255
    np.testing.assert_array_equal(out, expected)
    out = run(ZegOTZeroShotLabels('transductive', zero_shot_split='voc'), gt)
    assert sorted(np.unique(out[np.isin(gt, range(15, 20))])) == [254]


def test_repr_names_the_split():
    transform = ZegOTZeroShotLabels(zero_shot_split='context59')
    text = repr(transform)
    assert text.startswith("ZegOTZeroShotLabels(setting='inductive', "
                           "zero_shot_split='context59'")
    assert "'tvmonitor'" in text and 'unlabeled_index=254' in text


@pytest.mark.parametrize('kwargs,match', [
    (dict(setting='zero-shot'), '`setting` must be one of'),
    (dict(), 'needs the split'),
    (dict(classes=CLASSES), 'needs the split'),
    (dict(zero_shot_split='voc', classes=CLASSES), 'not both'),
    (dict(zero_shot_split='pascal'), 'Unknown `zero_shot_split`'),
    (dict(classes=CLASSES, unseen_classes=['bird']),
     r"`unseen_classes` \['bird'\]"),
    (dict(classes=CLASSES, unseen_classes=UNSEEN, unlabeled_index=255),
     'must differ'),
    (dict(classes=CLASSES, unseen_classes=UNSEEN, unlabeled_index=3),
     r'`unlabeled_index` must be an int in \[4, 255\]'),
    (dict(classes=CLASSES, unseen_classes=UNSEEN, ignore_index=256),
     '`ignore_index` must be an int'),
    (dict(zero_shot_split='coco-stuff', unlabeled_index=170),
     r'\[171, 255\].*got 170'),
])
def test_invalid_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ZegOTZeroShotLabels(**kwargs)
