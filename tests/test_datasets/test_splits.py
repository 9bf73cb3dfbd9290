# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The benchmark splits: names as mmseg spells them, indices derived."""
import dataclasses

import pytest
from mmseg.datasets import COCOStuffDataset, PascalContextDataset59, PascalVOCDataset

from mmseg_zegot.datasets import (
    SPLITS,
    ZeroShotSplit,
    get_split,
    make_split,
    register_split,
)
from mmseg_zegot.datasets.splits import check_class_names

#: name: (mmseg classes of the index space, #seen, #unseen, the unseen
#: indices of ZegCLIP's / OTSeg's configs (their ``novel_class`` lists)).
EXPECTED = {
    'voc': (PascalVOCDataset.METAINFO['classes'][1:], 15, 5,
            [15, 16, 17, 18, 19]),
    'context59': (PascalContextDataset59.METAINFO['classes'], 49, 10,
                  [19, 33, 48, 14, 7, 24, 6, 54, 31, 0]),
    'coco-stuff': (COCOStuffDataset.METAINFO['classes'], 156, 15,
                   [19, 23, 28, 29, 36, 51, 76, 88, 94, 112, 133, 136, 137,
                    157, 160]),
}

#: The unseen classes as the method description names them.
UNSEEN_NAMES = {
    'voc': ['pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor'],
    'context59': ['aeroplane', 'bird', 'boat', 'cat', 'cow', 'fence',
                  'keyboard', 'motorbike', 'sofa', 'tvmonitor'],
    'coco-stuff': ['cow', 'giraffe', 'suitcase', 'frisbee', 'skateboard',
                   'carrot', 'scissors', 'cardboard', 'clouds', 'grass',
                   'playingfield', 'river', 'road', 'tree', 'wall-concrete'],
}


def test_registry_holds_the_benchmarks():
    # Exactly these after `import mmseg_zegot` alone: see
    # tests/test_library_without_toy.py (projects register their own).
    assert set(EXPECTED) <= set(SPLITS)
    assert PascalVOCDataset.METAINFO['classes'][0] == 'background'


@pytest.fixture
def registered():
    """Names registered by a test, removed afterwards."""
    names = []
    yield names
    for name in names:
        SPLITS.pop(name, None)


def test_register_split_from_outside(registered):
    split = make_split(['a', 'b', 'c'], ['b'], name='test-world')
    registered.append(split.name)
    assert register_split(split) is split
    assert get_split('test-world') is split
    assert get_split('test-world', fully_supervised=True).unseen == ()
    # The same split again (a module imported twice): a no-op.
    again = make_split(['a', 'b', 'c'], ['b'], name='test-world')
    assert register_split(again) is split
    assert get_split('test-world') is split
    with pytest.raises(ValueError) as info:
        register_split(make_split(['a', 'b', 'c'], ['c'], name='test-world'))
    assert str(info.value) == (
        "A different split is already registered as 'test-world' (classes "
        "['a', 'b', 'c'], unseen ['b']). Give the new split another `name`, "
        'or pass it to the datasets and the model as dict(classes=[...], '
        'unseen_classes=[...]) without registering it.')
    assert get_split('test-world') is split
    with pytest.raises(ValueError, match="registered as 'voc'"):
        register_split(make_split(['a', 'b'], ['b'], name='voc'))


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_split_matches_mmseg_classes_and_published_indices(name):
    classes, num_seen, num_unseen, novel = EXPECTED[name]
    split = get_split(name)
    assert split.name == name
    assert split.classes == tuple(classes)
    missing = [c for c in UNSEEN_NAMES[name] if c not in classes]
    assert not missing, f'{name}: not mmseg class names: {missing}'
    assert set(split.unseen) == set(UNSEEN_NAMES[name])
    assert (len(split.seen), len(split.unseen)) == (num_seen, num_unseen)
    assert set(split.seen).isdisjoint(split.unseen)
    assert set(split.seen) | set(split.unseen) == set(classes)
    assert list(split.unseen_indices) == sorted(novel)
    assert [classes[i] for i in split.unseen_indices] == list(split.unseen)
    assert [classes[i] for i in split.seen_indices] == list(split.seen)
    assert split.seen_mask == tuple(i not in novel
                                    for i in range(len(classes)))


def test_fully_supervised_variant():
    split = get_split('voc', fully_supervised=True)
    assert split.unseen == () and split.unseen_indices == ()
    assert split.seen == split.classes == get_split('voc').classes
    assert all(split.seen_mask)
    assert split.name == 'voc-fully-supervised'
    assert split.fully_supervised() is split


def test_unknown_split_name_lists_the_known_ones():
    with pytest.raises(ValueError, match='zero_shot_split') as info:
        get_split('voc2012')
    assert "'context59'" in str(info.value)


def test_make_split_orders_unseen_like_classes():
    split = make_split(['a', 'b', 'c', 'd'], ['d', 'b'], name='toy')
    assert split == ZeroShotSplit('toy', ('a', 'b', 'c', 'd'), ('b', 'd'))
    assert split.seen == ('a', 'c')
    assert split.seen_indices == (0, 2)
    assert split.unseen_indices == (1, 3)
    assert split.seen_mask == (True, False, True, False)
    assert make_split(['a', 'b'], 'b').unseen == ('b', )
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.unseen = ()


def test_make_split_unknown_unseen_names_the_key_and_valid_names():
    with pytest.raises(ValueError) as info:
        make_split(['aeroplane', 'tvmonitor'], ['tv monitor'])
    message = str(info.value)
    assert '`unseen_classes`' in message
    assert "['tv monitor']" in message
    assert "['aeroplane', 'tvmonitor']" in message


@pytest.mark.parametrize('classes,unseen,match', [
    (['a', 'b', 'a'], [], r"`classes` names \['a'\] more than once"),
    (['a', ''], [], '`classes` holds empty'),
    ([], [], '`classes` is empty'),
    ('abc', [], '`classes` must be a sequence'),
    (['a', 'b'], ['b', 'b'], r"`unseen_classes` names \['b'\] more than"),
    (['a', 'b'], ['a', 'b'], 'at least one must be seen'),
])
def test_make_split_rejects_bad_worlds(classes, unseen, match):
    with pytest.raises(ValueError, match=match):
        make_split(classes, unseen)


@pytest.mark.parametrize('classes,groups,same', [
    (['circle', 'Circle'], "[['circle', 'Circle']]", "['circle']"),
    (['circle ', 'circle', 'square'], "[['circle ', 'circle']]",
     "['circle']"),
    (['big  star', 'Big star', 'moon'], "[['big  star', 'Big star']]",
     "['big star']"),
])
def test_names_that_are_one_text_to_clip_are_refused(classes, groups, same):
    with pytest.raises(ValueError) as info:
        check_class_names(classes, '--classes')
    assert str(info.value) == (
        f'--classes names {groups}, which are the same text to CLIP '
        f'({same}): its tokenizer lowercases names and strips and collapses '
        'spaces, so they would get identical scores. Keep one name of each.')


@pytest.mark.parametrize('name', ['\ufeffcircle', 'circ\u200ble', 'a\tb\x00'])
def test_names_with_invisible_characters_are_refused(name):
    with pytest.raises(ValueError) as info:
        check_class_names([name, 'square'], '--classes')
    assert str(info.value).startswith(
        f'--classes holds names with invisible characters {[name]} (e.g. a '
        'byte-order mark U+FEFF or a zero-width space)')
