# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The toy CLIP's image-caption pairs: names, descriptions, positives."""
import numpy as np
import pytest

from projects.toy_world.toy_world import captions as tcap
from projects.toy_world.toy_world import world as tw


def _pairs(style, count=200, seed=0):
    rng = np.random.default_rng(seed)
    return [tcap.sample_caption_pair(rng, style=style) for _ in range(count)]


def _object(radius, colours, label=4):
    return tw.ToyObject(label=label, name=tw.CLASS_NAMES[label - 1],
                        center=(32.0, 32.0), radius=radius, angle=0.0,
                        visible=100, area=100, colours=colours)


def test_names_style_names_every_visible_class_and_nothing_else():
    for pair in _pairs('names'):
        assert pair.image.shape == (64, 64, 3) and pair.labels
        assert list(pair.labels) == sorted(set(pair.labels))
        for k in pair.labels:
            assert tw.CLASS_NAMES[k - 1] in pair.caption
            assert pair.claims[k] == frozenset()
        others = set(tw.CLASS_NAMES) - {tw.CLASS_NAMES[k - 1]
                                         for k in pair.labels}
        assert not set(pair.caption[:-1].replace(',', '').split()) & others
    assert tcap.make_caption(['star', 'moon', 'ring'],
                             np.random.default_rng(1)).count(' a ') >= 2


def test_described_captions_are_true_of_their_image():
    pairs = _pairs('described', 300)
    words = set(tcap.COLOUR_NAMES) | set(tcap.TEXTURE_WORDS.values()) | {
        'small', 'large'}
    described = 0
    for pair in pairs:
        assert pair.describes(pair)
        tokens = set(pair.caption[:-1].replace(',', '').split())
        for k in pair.labels:
            assert tw.CLASS_NAMES[k - 1] in tokens
            assert pair.claims[k] <= pair.facts[k] <= words
            assert pair.claims[k] <= tokens
            described += bool(pair.claims[k])
        assert tokens & words == set().union(*pair.claims.values())
    assert described > 100  # about three in four objects get some words


def test_same_generator_same_pairs_and_names_style_unchanged_by_describing():
    for style in tcap.CAPTION_STYLES:
        a, b = _pairs(style, 20, seed=3), _pairs(style, 20, seed=3)
        assert [p.caption for p in a] == [p.caption for p in b]
        assert all((p.image == q.image).all() for p, q in zip(a, b))
    names = _pairs('names', 20, seed=3)
    described = _pairs('described', 20, seed=3)
    # The same images up to the first caption (its draws come after).
    assert (names[0].image == described[0].image).all()
    with pytest.raises(ValueError, match='style must be one of'):
        tcap.sample_caption_pair(np.random.default_rng(0), style='long')


def test_colour_names_and_object_words():
    for name, rgb in tcap.COLOUR_NAMES.items():
        assert tcap.colour_name(rgb) == name
    assert tcap.colour_name((250, 0, 0)) == 'red'
    assert tcap.colour_name((100, 100, 110)) == 'gray'
    size = (64, 64)
    small = tcap.object_words(_object(12.0, ((250, 0, 0), (0, 0, 0))),
                              'dots', size)
    assert small == dict(size=('small', ), colours=('red', 'black'),
                         texture=('dotted', ))
    middle = tcap.object_words(_object(16.0, ((250, 0, 0), (255, 10, 10))),
                               'hstripes', size)
    assert middle == dict(size=(), colours=('red', ), texture=('striped', ))
    large = tcap.object_words(_object(19.2, ((250, 250, 250), )), 'solid',
                              size)
    assert large['size'] == ('large', ) and large['colours'] == ('white', )


def test_described_phrases_and_articles():
    words = dict(size=('small', ), colours=('orange', 'white'),
                 texture=('dotted', ))
    rng = np.random.default_rng(0)
    caption, used = tcap.make_described_caption({'star': words}, rng,
                                                keep=1.0)
    assert 'a small orange and white dotted star' in caption
    assert used == {'star': {'small', 'orange', 'white', 'dotted'}}
    caption, used = tcap.make_described_caption(
        {'star': dict(words, size=())}, rng, keep=1.0)
    assert 'an orange and white dotted star' in caption
    caption, used = tcap.make_described_caption(
        {'star': words, 'moon': words}, rng, keep=0.0)
    assert used == {'star': set(), 'moon': set()}
    assert 'a star and a moon' in caption or 'a moon and a star' in caption


def test_describes_is_label_set_and_word_inclusion():
    image = np.zeros((2, 2, 3), np.uint8)

    def pair(labels, facts, claims):
        return tcap.CaptionPair(
            image, '', tuple(labels),
            {k: frozenset(v) for k, v in zip(labels, facts)},
            {k: frozenset(v) for k, v in zip(labels, claims)})

    red_star = pair([4], [{'red', 'dotted'}], [{'red'}])
    blue_star = pair([4], [{'blue', 'dotted'}], [{'dotted'}])
    plain_star = pair([4], [{'blue'}], [set()])
    star_moon = pair([4, 8], [{'red'}, {'gridded'}], [set(), set()])
    assert red_star.describes(red_star)
    assert not red_star.describes(blue_star)  # "red" is false there
    assert blue_star.describes(red_star)  # "dotted" is true there
    assert plain_star.describes(red_star) and plain_star.describes(blue_star)
    assert not plain_star.describes(star_moon)  # the moon is not named
    assert not star_moon.describes(red_star)
