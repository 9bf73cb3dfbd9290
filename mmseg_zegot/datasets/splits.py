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

This module is also the one place a split is parsed and checked:
:func:`resolve_split` reads every ``zero_shot_split`` config value (of the
datasets, the model, ``ZegOTZeroShotLabels`` and the dataset checker) and
checks a dataset's split against its classes; :func:`split_of_seen` reads
the model's ``class_names`` / ``seen_classes``. Datasets carry a split as
metainfo (:func:`split_metainfo`: ``seen_classes``, ``unseen_classes``,
``zero_shot_split``), and :class:`~mmseg_zegot.evaluation.ZeroShotIoUMetric`
and the start-up check read it back with :func:`split_of_metainfo`. Class
lists themselves are checked by
:func:`~mmseg_zegot.datasets.class_names.check_class_names`.
"""
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

from mmseg.datasets import COCOStuffDataset, PascalContextDataset59, PascalVOCDataset

from .class_names import check_class_names, duplicates, names_diff


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
        repeated = duplicates(unseen)
        if repeated:
            raise ValueError(f'Split {self.name!r}: `unseen_classes` names '
                             f'{repeated} more than once.')
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


#: What a ``zero_shot_split`` config value may be (see :func:`resolve_split`).
SplitSpec = Union[str, Mapping, ZeroShotSplit, None]


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


def resolve_split(spec: SplitSpec,
                  classes: Optional[Sequence[str]] = None) -> ZeroShotSplit:
    """The one parser of a ``zero_shot_split`` config value.

    Args:
        spec (str | dict | ZeroShotSplit | None): A split name (see
            :data:`SPLITS`), a :class:`ZeroShotSplit`,
            ``dict(classes=[...], unseen_classes=[...])``, or
            ``dict(name=..., unseen_classes=[...])`` for another split of a
            known dataset (the classes of ``SPLITS[name]``, other unseen
            ones). With ``classes`` (a dataset's split) also None (every
            class seen) and ``dict(unseen_classes=[...])`` with an optional
            new ``name``: those classes, these unseen.
        classes (Sequence[str], optional): The classes of the dataset the
            split is for, in label order: the split must have exactly these
            (:func:`check_split_classes`). None: the split is not a
            dataset's (the model's, a transform's).

    Returns:
        ZeroShotSplit: The split.

    Raises:
        ValueError: If ``spec`` is none of these, its classes or unseen
            classes are invalid, or they are not ``classes``.
    """
    dataset = classes is not None
    if spec is None and dataset:
        split = make_split(classes, (), name='fully-supervised')
    elif isinstance(spec, ZeroShotSplit):
        split = spec
    elif isinstance(spec, str):
        split = get_split(spec)
    elif isinstance(spec, Mapping):
        split = _split_of_dict(spec, classes)
    else:
        none = ', or None (every class seen)' if dataset else ''
        raise ValueError(
            '`zero_shot_split` must be a split name '
            f'({sorted(SPLITS)}), dict(classes=[...], unseen_classes=[...]),'
            f' dict(name=..., unseen_classes=[...]) or a ZeroShotSplit{none}'
            f', got {spec!r}.')
    if dataset:
        check_split_classes(split, classes)
    return split


def _split_of_dict(spec: Mapping,
                   classes: Optional[Sequence[str]]) -> ZeroShotSplit:
    """The split of a ``zero_shot_split`` dict (see :func:`resolve_split`)."""
    unknown = sorted(set(spec) - {'name', 'classes', 'unseen_classes'})
    if unknown or 'unseen_classes' not in spec:
        raise ValueError(
            f'`zero_shot_split` dict has keys {sorted(spec)}; it needs '
            "'unseen_classes' and may have 'classes' and 'name'.")
    name, unseen = spec.get('name', 'custom'), spec['unseen_classes']
    if 'classes' in spec:
        return make_split(spec['classes'], unseen, name=name)
    if classes is not None:
        # Checked against the dataset's classes first, so unknown unseen
        # names are reported with the classes the user has in front of them.
        split = make_split(classes, unseen, name=name)
        if name not in SPLITS:
            return split
    if 'name' not in spec:
        raise ValueError(
            f'`zero_shot_split` {dict(spec)!r} names no classes: add '
            "'classes', or the 'name' of a known split "
            f'({sorted(SPLITS)}).')
    return make_split(get_split(name).classes, unseen, name=name)


def check_split_classes(split: ZeroShotSplit, classes: Sequence[str]) -> None:
    """Check that a dataset's split has exactly the dataset's classes.

    Args:
        split (ZeroShotSplit): The split.
        classes (Sequence[str]): The dataset's classes, in label order.

    Raises:
        ValueError: If the names or their order differ, naming both lists'
            own classes and the fix.
    """
    classes = tuple(classes)
    if split.classes == classes:
        return
    diff = names_diff(split.classes, classes, 'the split', 'the dataset')
    raise ValueError(
        f'`zero_shot_split` {split.name!r} does not match the dataset\'s '
        f'classes ({diff}). Use the split of this dataset, or give the '
        'dataset the split\'s classes through `metainfo.classes`.')


def split_metainfo(split: ZeroShotSplit,
                   metainfo: Optional[Mapping] = None) -> dict:
    """The metainfo a dataset carries its split in.

    Args:
        split (ZeroShotSplit): The dataset's split.
        metainfo (Mapping, optional): The metainfo the dataset was given;
            any of the keys it already holds must agree with ``split``.

    Returns:
        dict: ``seen_classes``, ``unseen_classes`` (tuples) and
        ``zero_shot_split`` (the split's name).

    Raises:
        ValueError: If ``metainfo`` holds a key with another value.
    """
    meta = dict(seen_classes=split.seen, unseen_classes=split.unseen,
                zero_shot_split=split.name)
    for key, value in meta.items():
        given = (metainfo or {}).get(key, value)
        if (given if isinstance(given, str) else tuple(given)) != value:
            raise ValueError(
                f'`metainfo.{key}` ({given!r}) disagrees with '
                f'`zero_shot_split` ({value!r}); set the split through '
                '`zero_shot_split` only.')
    return meta


def split_of_metainfo(metainfo: Mapping) -> Optional[ZeroShotSplit]:
    """The split a dataset's metainfo carries (see :func:`split_metainfo`).

    Args:
        metainfo (Mapping): A dataset's ``metainfo`` / ``dataset_meta``,
            with ``classes``.

    Returns:
        ZeroShotSplit | None: The split (named ``'custom'`` when the
        metainfo names none); None when it has no ``unseen_classes``.

    Raises:
        ValueError: If the unseen classes are not classes, or
            ``seen_classes`` is not their complement.
    """
    if metainfo.get('unseen_classes') is None:
        return None
    split = make_split(metainfo['classes'], metainfo['unseen_classes'],
                       metainfo.get('zero_shot_split') or 'custom')
    seen = tuple(metainfo.get('seen_classes', split.seen))
    if seen != split.seen:
        raise ValueError(
            f"The dataset's `seen_classes` {list(seen)} are not the "
            f'complement of its `unseen_classes` {list(split.unseen)} in '
            'its classes; rebuild the dataset with `zero_shot_split`.')
    return split


def split_of_seen(class_names: Sequence[str],
                  seen_classes: Optional[Sequence[str]] = None,
                  name: str = 'custom') -> ZeroShotSplit:
    """A split from all classes and the seen ones, as a model takes them.

    Args:
        class_names (Sequence[str]): All classes, in label order (config key
            ``class_names``).
        seen_classes (Sequence[str], optional): The seen subset (config key
            ``seen_classes``); None: every class (no zero-shot split).
        name (str): Name of the split. Defaults to ``'custom'``.

    Returns:
        ZeroShotSplit: The split; its ``unseen`` are the classes not seen.

    Raises:
        ValueError: If either list is invalid (:func:`check_class_names`)
            or ``seen_classes`` holds a name not in ``class_names``, with
            the closest spellings.
    """
    class_names = check_class_names(class_names, 'class_names')
    seen = class_names if seen_classes is None else check_class_names(
        seen_classes, 'seen_classes')
    unknown = [c for c in seen if c not in class_names]
    if unknown:
        hints = {c: difflib.get_close_matches(c, class_names, n=1)
                 for c in unknown}
        raise ValueError(
            f'seen_classes holds {unknown}, which are not in class_names '
            f'(closest: {hints}); use the exact dataset class spellings')
    return make_split(class_names, [c for c in class_names if c not in seen],
                      name=name)
