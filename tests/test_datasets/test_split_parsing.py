# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The one parser of splits (``resolve_split``, ``split_of_seen``), the
split metainfo of datasets, and how class lists are compared in messages."""
import pytest

from mmseg_zegot.datasets import get_split, make_split, resolve_split
from mmseg_zegot.datasets.class_names import names_diff
from mmseg_zegot.datasets.splits import (
    split_metainfo,
    split_of_metainfo,
    split_of_seen,
)

CLASSES = ('cat', 'dog', 'grass', 'sky')


def test_names_diff_words_both_kinds_of_difference():
    assert names_diff(('a', 'b', 'c'), ('b', 'd'), 'the split',
                      'the dataset') == (
        "3 vs 2 classes; only in the split: ['a', 'c'], only in the "
        "dataset: ['d']")
    assert names_diff(('a', 'b', 'c'), ('a', 'c', 'b')) == (
        'the same names in a different order (first difference at index 1: '
        "'b' vs 'c')")


def test_resolve_split_for_a_dataset():
    # None: every class seen; a dict without classes takes the dataset's.
    full = resolve_split(None, CLASSES)
    assert (full.name, full.classes, full.unseen) == (
        'fully-supervised', CLASSES, ())
    custom = resolve_split(dict(unseen_classes=['dog']), CLASSES)
    assert (custom.name, custom.unseen) == ('custom', ('dog', ))
    # A known split's name: its classes, checked against the dataset's.
    voc = get_split('voc').classes
    resplit = resolve_split(dict(name='voc', unseen_classes=['cat']), voc)
    assert resplit.classes == voc and resplit.unseen == ('cat', )
    assert resolve_split('voc', voc) is get_split('voc')
    with pytest.raises(ValueError) as info:
        resolve_split('voc', CLASSES)
    assert str(info.value).startswith(
        "`zero_shot_split` 'voc' does not match the dataset's classes (20 vs "
        "4 classes; only in the split: ['aeroplane'")
    assert "only in the dataset: ['grass', 'sky']" in str(info.value)


@pytest.mark.parametrize('spec,classes,match', [
    (None, None, 'must be a split name'),
    (['dog'], CLASSES, r'must be a split name .* or None \(every class'),
    (dict(unseen=['dog']), CLASSES, "needs 'unseen_classes'"),
    (dict(unseen_classes=['dog']), None, "names no classes: add 'classes'"),
    (dict(unseen_classes=['cow']), CLASSES, r"`unseen_classes` \['cow'\]"),
])
def test_resolve_split_refuses(spec, classes, match):
    with pytest.raises(ValueError, match=match):
        resolve_split(spec, classes)


def test_split_metainfo_round_trip():
    split = make_split(CLASSES, ['dog', 'sky'], name='pets')
    meta = split_metainfo(split, dict(classes=CLASSES))
    assert meta == dict(seen_classes=('cat', 'grass'),
                        unseen_classes=('dog', 'sky'), zero_shot_split='pets')
    assert split_of_metainfo(dict(meta, classes=CLASSES)) == split
    assert split_of_metainfo(dict(classes=CLASSES)) is None
    with pytest.raises(ValueError, match=r'`metainfo\.unseen_classes`'):
        split_metainfo(split, dict(unseen_classes=['dog']))
    with pytest.raises(ValueError, match='not the complement'):
        split_of_metainfo(dict(meta, classes=CLASSES, seen_classes=CLASSES))


def test_split_of_seen():
    split = split_of_seen(CLASSES, ['cat', 'grass'])
    assert split.unseen == ('dog', 'sky') and split.name == 'custom'
    assert split_of_seen(CLASSES).unseen == ()
    with pytest.raises(ValueError) as info:
        split_of_seen(CLASSES, ['cats'])
    assert str(info.value) == (
        "seen_classes holds ['cats'], which are not in class_names "
        "(closest: {'cats': ['cat']}); use the exact dataset class spellings")
    with pytest.raises(ValueError, match='seen_classes names'):
        split_of_seen(CLASSES, ['cat', 'cat'])
