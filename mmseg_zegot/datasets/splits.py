# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Seen / unseen class splits of the zero-shot benchmarks: the one place they
are defined.

A split is written as class *names*, with the spellings of mmseg's dataset
classes; the class lists themselves are read from mmseg's ``METAINFO`` (VOC
without ``'background'``), so the index space is always the one the label
files use. Indices and masks are derived from the names, never written by
hand. The unseen classes are those of ZegCLIP / OTSeg (Zhou et al., CVPR
2023; Kim et al., ECCV 2024), also used by ZegOT (Kim et al., 2023,
arXiv:2301.12171).

Datasets carry a split as metainfo (``seen_classes``, ``unseen_classes``,
``zero_shot_split``; see :mod:`mmseg_zegot.datasets.zero_shot`) and
:class:`~mmseg_zegot.evaluation.ZeroShotIoUMetric` reads it from
``dataset_meta``.
"""
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Dict, Iterable, Tuple, Union

from mmseg.datasets import COCOStuffDataset, PascalContextDataset59, PascalVOCDataset


def clip_text(name: str) -> str:
    """The text CLIP's tokenizer reads for ``name``: open_clip's default
    cleaning lowercases it, strips it and collapses runs of white space."""
    return ' '.join(name.split()).lower()


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
    duplicates = _duplicates(names)
    if duplicates:
        raise ValueError(f'{key} names {duplicates} more than once.')
    same = _duplicates(tuple(clip_text(c) for c in names))
    if same:
        groups = [[c for c in names if clip_text(c) == text] for text in same]
        raise ValueError(
            f'{key} names {groups}, which are the same text to CLIP ({same}):'
            ' its tokenizer lowercases names and strips and collapses '
            'spaces, so they would get identical scores. Keep one name of '
            'each.')
    return names


@dataclass(frozen=True)
class ZeroShotSplit:
    """A class index space and the classes of it unseen during training.

    Args:
        name (str): Name of the split (e.g. ``'voc'``), for logs and
            metainfo.
        classes (tuple[str]): All class names, in dataset (label index)
            order.
        unseen (tuple[str]): Names of the unseen classes. They are stored in
            dataset order whatever order they are given in, so two splits
            with the same classes and unseen set compare equal. Empty for a
            fully supervised world.

    Raises:
        ValueError: On empty, blank or duplicate class names (key
            ``classes``), unseen names that are not classes or appear twice
            (key ``unseen_classes``), or when no class is left seen.
    """
    name: str
    classes: Tuple[str, ...]
    unseen: Tuple[str, ...]

    def __post_init__(self) -> None:
        classes = check_class_names(self.classes,
                                    f'Split {self.name!r}: `classes`')
        unseen = (self.unseen, ) if isinstance(self.unseen, str) else tuple(
            self.unseen)
        unknown = [c for c in unseen if c not in classes]
        if unknown:
            raise ValueError(
                f'Split {self.name!r}: `unseen_classes` {unknown} are not '
                f'classes of the dataset. Use the exact spellings of '
                f'`classes`: {list(classes)}.')
        duplicates = _duplicates(unseen)
        if duplicates:
            raise ValueError(f'Split {self.name!r}: `unseen_classes` names '
                             f'{duplicates} more than once.')
        if len(unseen) == len(classes):
            raise ValueError(f'Split {self.name!r}: every class is in '
                             '`unseen_classes`; at least one must be seen.')
        object.__setattr__(self, 'classes', classes)
        object.__setattr__(self, 'unseen',
                           tuple(c for c in classes if c in unseen))

    @property
    def seen(self) -> Tuple[str, ...]:
        """tuple[str]: Seen class names, in dataset order."""
        return tuple(c for c in self.classes if c not in self.unseen)

    @property
    def seen_mask(self) -> Tuple[bool, ...]:
        """tuple[bool]: (K,) True where the class is seen."""
        return tuple(c not in self.unseen for c in self.classes)

    @property
    def seen_indices(self) -> Tuple[int, ...]:
        """tuple[int]: Label indices of the seen classes, ascending."""
        return tuple(i for i, seen in enumerate(self.seen_mask) if seen)

    @property
    def unseen_indices(self) -> Tuple[int, ...]:
        """tuple[int]: Label indices of the unseen classes, ascending."""
        return tuple(i for i, seen in enumerate(self.seen_mask) if not seen)

    def fully_supervised(self) -> 'ZeroShotSplit':
        """The same classes with none unseen (the supervised upper bound)."""
        if not self.unseen:
            return self
        return replace(self, name=f'{self.name}-fully-supervised', unseen=())


def _duplicates(names: Tuple[str, ...]) -> list:
    return sorted({n for n in names if names.count(n) > 1})


def make_split(classes: Iterable[str],
               unseen: Iterable[str],
               name: str = 'custom') -> ZeroShotSplit:
    """Build (and validate) a split of ``classes`` for a custom dataset.

    Args:
        classes (Iterable[str]): All class names, in label index order.
        unseen (Iterable[str]): Names of the unseen classes.
        name (str): Name of the split. Defaults to ``'custom'``.

    Returns:
        ZeroShotSplit: The split.
    """
    return ZeroShotSplit(name=name, classes=classes, unseen=unseen)


def _without_background(classes: Tuple[str, ...]) -> Tuple[str, ...]:
    return tuple(c for c in classes if c != 'background')


#: The benchmark splits, by name.
SPLITS: Dict[str, ZeroShotSplit] = {
    split.name: split
    for split in (
        # PASCAL VOC 2012, 20 classes (background ignored): 15 seen, 5 unseen.
        make_split(
            _without_background(PascalVOCDataset.METAINFO['classes']),
            ('pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor'),
            name='voc'),
        # PASCAL Context, 59 classes (background ignored): 49 seen, 10 unseen.
        make_split(
            PascalContextDataset59.METAINFO['classes'],
            ('aeroplane', 'bird', 'boat', 'cat', 'cow', 'fence', 'keyboard',
             'motorbike', 'sofa', 'tvmonitor'),
            name='context59'),
        # COCO-Stuff 164k, 171 classes: 156 seen, 15 unseen.
        make_split(
            COCOStuffDataset.METAINFO['classes'],
            ('cow', 'giraffe', 'suitcase', 'frisbee', 'skateboard', 'carrot',
             'scissors', 'cardboard', 'clouds', 'grass', 'playingfield',
             'river', 'road', 'tree', 'wall-concrete'),
            name='coco-stuff'),
    )
}


def register_split(split: ZeroShotSplit) -> ZeroShotSplit:
    """Add ``split`` to :data:`SPLITS`, so configs can name it (a project's
    own world registers its split when its package is imported).

    Registering the same split again is a no-op, so a module that registers
    can be imported twice.

    Args:
        split (ZeroShotSplit): The split, under its ``name``.

    Returns:
        ZeroShotSplit: The registered split (equal to ``split``).

    Raises:
        ValueError: If another split is registered under ``split.name``.
    """
    known = SPLITS.setdefault(split.name, split)
    if known != split:
        raise ValueError(
            f'A different split is already registered as {split.name!r} '
            f'(classes {list(known.classes)}, unseen {list(known.unseen)}). '
            'Give the new split another `name`, or pass it to the datasets '
            'and the model as dict(classes=[...], unseen_classes=[...]) '
            'without registering it.')
    return known


def get_split(name: str, fully_supervised: bool = False) -> ZeroShotSplit:
    """A benchmark split by name.

    Args:
        name (str): One of :data:`SPLITS` (``'voc'``, ``'context59'``,
            ``'coco-stuff'``).
        fully_supervised (bool): Return the split's classes with none unseen.
            Defaults to False.

    Returns:
        ZeroShotSplit: The split.

    Raises:
        ValueError: If ``name`` is not a known split.
    """
    if name not in SPLITS:
        raise ValueError(f'Unknown `zero_shot_split` {name!r}; known splits '
                         f'are {sorted(SPLITS)}, or pass '
                         'dict(classes=..., unseen_classes=...).')
    split = SPLITS[name]
    return split.fully_supervised() if fully_supervised else split


def resolve_split(spec: Union[str, Mapping, ZeroShotSplit]) -> ZeroShotSplit:
    """A split from a config value: a split name, a :class:`ZeroShotSplit`,
    ``dict(classes=[...], unseen_classes=[...])``, or
    ``dict(name=..., unseen_classes=[...])`` for another split of a known
    dataset (the classes of :data:`SPLITS` ``[name]``, other unseen ones).

    Raises:
        ValueError: If ``spec`` is none of these.
    """
    if isinstance(spec, ZeroShotSplit):
        return spec
    if isinstance(spec, str):
        return get_split(spec)
    keys = set(spec) if isinstance(spec, Mapping) else set()
    if 'unseen_classes' in keys and keys <= {'classes', 'unseen_classes',
                                             'name'}:
        if 'classes' in keys:
            return make_split(spec['classes'], spec['unseen_classes'],
                              name=spec.get('name', 'custom'))
        if 'name' in keys:
            return make_split(get_split(spec['name']).classes,
                              spec['unseen_classes'], name=spec['name'])
    raise ValueError(
        '`zero_shot_split` must be a split name '
        f'({sorted(SPLITS)}), dict(classes=[...], unseen_classes=[...]) or '
        f'dict(name=..., unseen_classes=[...]), got {spec!r}.')
