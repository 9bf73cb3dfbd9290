# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Dataset labels -> training targets (columns, ignored, pseudo-labels)."""
import pytest
import torch

from mmseg_zegot.models.utils.zero_shot_targets import (
    PSEUDO_LABEL,
    assign_pseudo_labels,
    map_labels,
    training_label_map,
)

SEEN = torch.tensor([True, False, True, False, True])


@pytest.mark.parametrize('setting, seen, label_map, columns', [
    ('inductive', SEEN, [0, 255, 1, 255, 2], None),
    ('transductive', SEEN, [0, PSEUDO_LABEL, 2, PSEUDO_LABEL, 4],
     [False, True, False, True, False]),
    ('fully', SEEN, [0, 1, 2, 3, 4], None),
    ('transductive', torch.ones(3, dtype=torch.bool), [0, 1, 2], None),
    ('inductive', torch.ones(3, dtype=torch.bool), [0, 1, 2], None),
])
def test_training_label_map(setting, seen, label_map, columns):
    got, pseudo = training_label_map(seen, setting, ignore_index=255)
    assert got.dtype == torch.long and got.tolist() == label_map
    assert (pseudo if pseudo is None else pseudo.tolist()) == columns
    with pytest.raises(ValueError, match='setting'):
        training_label_map(seen, 'semi', ignore_index=255)


def test_map_labels_ignores_unseen_pixels():
    # dataset classes 0..4; class 1 and 3 unseen; train columns 0, 1, 2
    label_map = torch.tensor([0, 255, 1, 255, 2])
    gt = torch.tensor([[[0, 1, 2], [3, 4, 255]]], dtype=torch.uint8)
    mapped = map_labels(gt, label_map, ignore_index=255, unlabeled_index=254)
    assert mapped.dtype == torch.long
    assert mapped.tolist() == [[[0, 255, 1], [255, 2, 255]]]
    with pytest.raises(ValueError, match=r'\[7\]'):
        map_labels(torch.tensor([[[7]]]), label_map, ignore_index=255,
                   unlabeled_index=254)


def test_unlabeled_pixels_are_pseudo_labelled_or_ignored():
    """Pixels hidden by ZegOTZeroShotLabels (254) take a pseudo-label."""
    gt = torch.tensor([[[0, 254], [2, 255]]])
    labels = map_labels(gt, torch.tensor([0, PSEUDO_LABEL, 2]),
                        ignore_index=255, unlabeled_index=254)
    assert labels.tolist() == [[[0, PSEUDO_LABEL], [2, 255]]]
    prob = torch.zeros(1, 3, 2, 2).sigmoid()
    out = assign_pseudo_labels(labels, prob,
                               torch.tensor([False, True, False]), 255)
    assert out.tolist() == [[[0, 1], [2, 255]]]
    # inductive: ignored
    labels = map_labels(gt, torch.tensor([0, 255, 1]), ignore_index=255,
                        unlabeled_index=254)
    assert assign_pseudo_labels(labels, None, None, 255).tolist() == [
        [[0, 255], [1, 255]]]
    with pytest.raises(ValueError, match=r'\[254\]'):
        map_labels(gt, torch.arange(5), ignore_index=255,
                   unlabeled_index=None)


def test_pseudo_labels_take_the_best_unseen_column():
    allowed = torch.tensor([False, True, False, True])
    gt = torch.tensor([[[0, 1], [3, 255]]])
    labels = map_labels(gt, torch.tensor([0, PSEUDO_LABEL, 2, PSEUDO_LABEL]),
                        ignore_index=255, unlabeled_index=254)
    assert labels.tolist() == [[[0, PSEUDO_LABEL], [PSEUDO_LABEL, 255]]]
    score = torch.full((1, 4, 2, 2), -5.0)
    score[0, 0] = 9.0  # a seen column scores highest everywhere ...
    score[0, 3, 0, 1] = 2.0  # ... the unseen winner at (0, 1) is 3
    score[0, 1, 1, 0] = 1.0  # ... and at (1, 0) it is 1
    out = assign_pseudo_labels(labels, score.sigmoid(), allowed, 255)
    assert out.tolist() == [[[0, 3], [1, 255]]]
    # without pseudo-label columns those pixels are ignored
    assert assign_pseudo_labels(labels, score.sigmoid(), None, 255).tolist(
    ) == [[[0, 255], [255, 255]]]


@pytest.mark.parametrize('seed', range(5))
def test_pseudo_labels_never_seen_never_overwrite(seed):
    """On random scores and labels: labelled pixels keep their labels and
    pseudo-labelled pixels only ever get an unseen class."""
    generator = torch.Generator().manual_seed(seed)
    num_classes = 7
    unseen = torch.zeros(num_classes, dtype=torch.bool)
    unseen[torch.randperm(num_classes, generator=generator)[:3]] = True
    label_map, columns = training_label_map(~unseen, 'transductive', 255)
    assert torch.equal(columns, unseen)
    gt = torch.randint(0, num_classes, (2, 6, 5), generator=generator)
    gt[torch.rand(gt.shape, generator=generator) < 0.2] = 255
    labels = map_labels(gt, label_map, ignore_index=255, unlabeled_index=254)
    score = torch.randn(2, num_classes, 6, 5, generator=generator) * 5
    out = assign_pseudo_labels(labels, score.sigmoid(), columns, 255)
    hidden = labels == PSEUDO_LABEL
    assert hidden.any()
    assert torch.equal(out[~hidden], labels[~hidden])
    assert unseen[out[hidden]].all()
