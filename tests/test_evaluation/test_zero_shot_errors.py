# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Error-analysis counts on a hand-worked example."""
import math

import pytest
import torch

from mmseg_zegot.evaluation.zero_shot_errors import (
    accumulate,
    accumulate_alignment,
    alignment_report,
    class_ious,
    new_alignment_counts,
    new_counts,
    outside_span,
    summarize,
)

SEEN = torch.tensor([True, True, False])
NAMES = ('cat', 'dog', 'sheep')


def _image():
    """Four pixels: cat predicted as the absent dog, sheep predicted as
    cat (a seen class), sheep right, and an ignored pixel."""
    gt = torch.tensor([[0, 2], [2, 255]])
    scores = torch.tensor([
        [[0.5, 0.8], [0.1, 1.0]],  # cat
        [[0.9, 0.1], [0.2, 0.0]],  # dog
        [[0.1, 0.3], [0.7, 0.0]],  # sheep
    ])
    return scores, gt


def test_counts():
    counts = new_counts(3)
    scores, gt = _image()
    accumulate(counts, scores, gt, SEEN)
    assert counts['confusion'].tolist() == [[0, 1, 0], [0, 0, 0], [1, 0, 1]]
    # With the argmax over the present classes (cat, sheep), cat is right.
    assert counts['confusion_present'].tolist() == [[1, 0, 0], [0, 0, 0],
                                                    [1, 0, 1]]
    assert int(counts['unseen_pixels']) == 2
    assert int(counts['unseen_to_seen']) == 1
    assert int(counts['unseen_zsl_hits']) == 2  # among unseen: sheep twice
    accumulate(counts, scores, gt, SEEN)  # counts add up over images
    assert int(counts['unseen_pixels']) == 4
    assert counts['confusion'].sum() == 6


def test_summary():
    counts = new_counts(3)
    accumulate(counts, *_image(), SEEN)
    report = summarize(counts, NAMES, SEEN)
    assert report['mIoU.seen'] == 0.0  # cat 0/2, dog 0/1
    assert report['mIoU.unseen'] == 50.0  # sheep 1/2
    # dog: neither in the ground truth nor predicted -> left out (NaN).
    assert report['mIoU.seen.present'] == 50.0
    assert math.isnan(report['iou_present']['dog'])
    assert report['mIoU.unseen.present'] == 50.0
    assert report['unseen_to_seen'] == 50.0
    assert report['unseen_zsl_acc'] == 100.0
    assert report['seen_to_unseen'] == 0.0  # the cat pixel went to dog
    assert report['confusion'] == [[0.0, 100.0, 0.0], [0.0, 0.0, 0.0],
                                   [50.0, 0.0, 50.0]]


def test_class_ious_match_the_definition():
    confusion = torch.randint(0, 50, (5, 5))
    iou = class_ious(confusion)
    for k in range(5):
        hits = confusion[k, k].item()
        union = confusion[k].sum().item() + confusion[:, k].sum().item() - hits
        assert math.isclose(iou[k].item(), hits / union)


def test_images_without_unseen_pixels():
    counts = new_counts(3)
    scores, _ = _image()
    accumulate(counts, scores, torch.tensor([[0, 1], [1, 255]]), SEEN)
    report = summarize(counts, NAMES, SEEN)
    assert math.isnan(report['unseen_to_seen'])
    assert math.isnan(report['unseen_zsl_acc'])


def test_seen_pixels_taken_by_unseen_classes():
    """Pixel shares over all seen pixels, not a mean of class rows."""
    counts = new_counts(3)
    counts['confusion'] = torch.tensor([[6, 1, 3], [0, 0, 0], [0, 0, 4]])
    counts['confusion'][1] = torch.tensor([0, 9, 1])
    report = summarize(counts, NAMES, SEEN)
    assert report['seen_to_unseen'] == 20.0  # (3 + 1) of 20 seen pixels
    counts['confusion'][:2] = 0
    assert math.isnan(summarize(counts, NAMES, SEEN)['seen_to_unseen'])


def test_outside_span():
    basis = torch.tensor([[[1., 0, 0], [0, 1, 0]], [[0., 0, 1], [0, 1, 0]]])
    vectors = torch.tensor([[[1., 1, 1], [2, -3, 0]], [[1., 0, 0],
                                                       [0, 5, 5]]])
    torch.testing.assert_close(outside_span(vectors, basis),
                               torch.tensor([[1.0, 0.0], [1.0, 0.0]]))


def test_alignment_report():
    """cat, dog seen, sheep unseen; the alignment moves sheep to cat."""
    r2, r3 = math.sqrt(2), math.sqrt(3)
    text = torch.tensor([[1., 0, 0], [0, 1, 0], [1, 1, 1]])  # normalised
    image1 = torch.tensor([[2., 0, 0], [0, 1, 0], [1, 0, 1]])
    image2 = torch.tensor([[1., 0, 0], [0, 3, 0], [4, 0, 0]])
    counts = new_alignment_counts(3)
    accumulate_alignment(counts, image1[None], SEEN)
    accumulate_alignment(counts, image2[None], SEEN)
    report = alignment_report(counts, text, NAMES, SEEN)
    near = report['nearest_seen']['sheep']
    assert near['seen'] == 'cat'
    assert near['cos'] == pytest.approx((1 / r2 + 1) / 2, abs=1e-4)
    assert near['cos_text'] == pytest.approx(1 / r3, abs=1e-4)
    span = report['outside_seen_span']
    assert span['text'] == pytest.approx(1 / r3, abs=1e-4)
    assert span['queries'] == pytest.approx((1 / r2 + 0) / 2, abs=1e-4)
    # One batch of two images is the same as two batches of one.
    batched = new_alignment_counts(3)
    accumulate_alignment(batched, torch.stack([image1, image2]), SEEN)
    assert alignment_report(batched, text, NAMES, SEEN) == report
