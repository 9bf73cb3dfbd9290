# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Class vocabularies: the one check of a list of class names, and how two
lists differ, for messages.

Every class list of a run goes through :func:`check_class_names` (splits,
the segmentor's ``class_names`` / ``seen_classes``, run-time vocabularies of
the inferencer), and every message about two disagreeing lists (a split and
its dataset, a dataset and the model, the dataset checker) words the
difference with :func:`names_diff`. Splits build on this module
(:mod:`mmseg_zegot.datasets.splits`); it imports nothing of the package.
"""
import unicodedata
from collections.abc import Sequence
from typing import List, Tuple


def clip_text(name: str) -> str:
    """The text CLIP's tokenizer reads for ``name``: open_clip's default
    cleaning lowercases it, strips it and collapses runs of white space."""
    return ' '.join(name.split()).lower()


def duplicates(names: Sequence) -> List:
    """The entries of ``names`` that occur more than once, sorted."""
    names = list(names)
    return sorted({n for n in names if names.count(n) > 1})


def check_class_names(names, key: str) -> Tuple[str, ...]:
    """``names`` as a tuple of distinct, non-empty strings, else ValueError.

    The one check of every class vocabulary (splits, the segmentor's
    ``class_names`` / ``seen_classes``, run-time vocabularies). Names must
    be distinct as CLIP reads them (:func:`clip_text`: ``'circle'``,
    ``'Circle'`` and ``'circle '`` are one class to it) and hold no
    invisible characters (a byte-order mark or zero-width space would be
    encoded as part of the name).

    Args:
        names (Sequence[str]): Class names.
        key (str): The config key or option they came from, for messages.
    """
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ValueError(f'{key} must be a sequence of names (a list of '
                         f'class names), got {names!r}.')
    names = tuple(names)
    if not names:
        raise ValueError(f'{key} is empty.')
    blank = [c for c in names if not isinstance(c, str) or not c.strip()]
    if blank:
        raise ValueError(f'{key} holds empty or non-string names {blank}.')
    invisible = [c for c in names if any(
        unicodedata.category(char) in ('Cc', 'Cf') and not char.isspace()
        for char in c)]
    if invisible:
        raise ValueError(
            f'{key} holds names with invisible characters {invisible} (e.g. '
            'a byte-order mark U+FEFF or a zero-width space): CLIP would '
            'read them as part of the name. Remove them (save a classes '
            'file as UTF-8 without BOM, or strip the names).')
    repeated = duplicates(names)
    if repeated:
        raise ValueError(f'{key} names {repeated} more than once.')
    same = duplicates(tuple(clip_text(c) for c in names))
    if same:
        groups = [[c for c in names if clip_text(c) == text] for text in same]
        raise ValueError(
            f'{key} names {groups}, which are the same text to CLIP ({same}):'
            ' its tokenizer lowercases names and strips and collapses '
            'spaces, so they would get identical scores. Keep one name of '
            'each.')
    return names


def names_diff(ours: Sequence[str],
               theirs: Sequence[str],
               first: str = 'the first',
               second: str = 'the second') -> str:
    """How two different class lists differ, in words, for messages.

    Args:
        ours (Sequence[str]): One list.
        theirs (Sequence[str]): The other, not equal to ``ours``.
        first (str): What ``ours`` is, e.g. ``'the split'``.
        second (str): What ``theirs`` is, e.g. ``'the dataset'``.

    Returns:
        str: E.g. ``"20 vs 3 classes; only in the first: ['aeroplane', ...],
        only in the second: ['car']"``, or for the same names ``"the same
        names in a different order (first difference at index 0:
        'tvmonitor' vs 'aeroplane')"``.
    """
    ours, theirs = tuple(ours), tuple(theirs)
    only_ours = [name for name in ours if name not in theirs]
    only_theirs = [name for name in theirs if name not in ours]
    if only_ours or only_theirs or len(ours) != len(theirs):
        return (f'{len(ours)} vs {len(theirs)} classes; only in {first}: '
                f'{only_ours}, only in {second}: {only_theirs}')
    index = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
    return ('the same names in a different order (first difference at '
            f'index {index}: {ours[index]!r} vs {theirs[index]!r})')
