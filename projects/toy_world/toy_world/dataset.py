# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The toy world as an mmseg dataset, and its zero-shot split ``'toy'``.

Importing this module registers :class:`ZegOTToyWorldDataset` in mmseg's
``DATASETS`` and the split ``'toy'`` (:data:`TOY_SPLIT`) with
:func:`~mmseg_zegot.datasets.register_split`.
"""
import json
from typing import Mapping, Optional, Tuple

from mmengine import fileio
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from mmseg_zegot.datasets import ZeroShotDatasetMixin, make_split, register_split
from mmseg_zegot.datasets.splits import SplitSpec, resolve_split

from .world import CLASS_NAMES

#: The split of the embedded benchmark: the 12 shapes, 9 seen / 3 unseen.
TOY_SPLIT = register_split(
    make_split(CLASS_NAMES, ('star', 'moon', 'flower'), name='toy'))

#: The file in which a toy world records its classes (and how it was made).
TOY_WORLD_FILE = 'world.json'


def read_world_classes(data_root: str,
                       backend_args: Optional[dict] = None
                       ) -> Optional[Tuple[str, ...]]:
    """The classes a toy world was generated with, in label order (label
    ``k`` is the ``k``-th, from 1), from its ``world.json``; None when the
    world has no such file (or does not exist yet).

    Raises:
        ValueError: If ``world.json`` holds no list of class names.
    """
    path = fileio.join_path(data_root or '', TOY_WORLD_FILE)
    if not fileio.exists(path, backend_args):
        return None
    try:
        classes = json.loads(fileio.get_text(
            path, backend_args=backend_args)).get('classes')
    except (ValueError, AttributeError) as error:
        classes = error
    if not (isinstance(classes, list) and classes
            and all(isinstance(c, str) for c in classes)):
        raise ValueError(
            f'{path} holds no list of class names under "classes" ({classes!r}'
            '): regenerate the world with projects/toy_world/tools/'
            'generate_world.py.')
    return tuple(classes)


@DATASETS.register_module()
class ZegOTToyWorldDataset(ZeroShotDatasetMixin, BaseSegDataset):
    """The procedural toy world of the embedded benchmark
    (:mod:`~projects.toy_world.toy_world.world`), in VOC's layout with PNG images:
    ``JPEGImages/*.png``, ``SegmentationClass/*.png`` (0 background, 1..K,
    255 borders; ``reduce_zero_label=True``) and
    ``ImageSets/Segmentation/{train,val}.txt``.

    The classes are those the world was generated with, in label order, as
    its ``world.json`` records them (``projects/toy_world/tools/
    generate_world.py --categories`` writes a subset, or another order); a world without
    ``world.json`` has the 12 default classes. The labels index these
    classes directly (mmseg's remapping of ``metainfo.classes`` against
    ``METAINFO`` does not apply), and a ``metainfo.classes`` or a
    ``zero_shot_split`` with other classes is refused.

    Args:
        zero_shot_split: Defaults to ``'toy'``; another split of the same
            classes is ``dict(name='toy', unseen_classes=[...])``, a split
            of a world of other categories ``dict(classes=[...],
            unseen_classes=[...])``. See :class:`ZeroShotDatasetMixin`.
        **kwargs: Passed to ``BaseSegDataset``.

    Raises:
        ValueError: If ``metainfo.classes`` or ``zero_shot_split`` does not
            have the classes of the world's ``world.json``.
    """
    METAINFO = dict(classes=None)

    def __init__(self,
                 ann_file: str = '',
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = True,
                 zero_shot_split: SplitSpec = 'toy',
                 metainfo: Optional[Mapping] = None,
                 **kwargs) -> None:
        classes = self._world_classes(kwargs.get('data_root', ''), metainfo,
                                      zero_shot_split,
                                      kwargs.get('backend_args'))
        super().__init__(
            ann_file=ann_file,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            zero_shot_split=zero_shot_split,
            metainfo=dict(metainfo or {}, classes=classes),
            **kwargs)

    @staticmethod
    def _world_classes(data_root: str, metainfo: Optional[Mapping],
                       zero_shot_split: SplitSpec,
                       backend_args: Optional[dict]) -> Tuple[str, ...]:
        """The dataset's classes: the world's, checked against the config."""
        world = read_world_classes(data_root, backend_args)
        given = (metainfo or {}).get('classes')
        if world is None:
            return tuple(given or TOY_SPLIT.classes)
        source = (f'the world at {data_root} was generated with the classes '
                  f'{list(world)} (its {TOY_WORLD_FILE}; label k is the '
                  'k-th)')
        if given is not None and tuple(given) != world:
            raise ValueError(
                f'ZegOTToyWorldDataset: `metainfo.classes` {list(given)} '
                f'disagrees: {source}. Drop `metainfo.classes`; the dataset '
                f'reads the classes from {TOY_WORLD_FILE}.')
        try:
            resolve_split(zero_shot_split, world)
        except ValueError:
            # Not chained: the split's own message advises
            # `metainfo.classes`, which is wrong here (tools report the
            # innermost error).
            raise ValueError(
                f'ZegOTToyWorldDataset: `zero_shot_split` {zero_shot_split!r}'
                f' does not fit the world: {source}. Set the split of the '
                'world\'s classes on every dataset and the model, e.g. '
                f'zero_shot_split=dict(name=\'toy-custom\', classes='
                f'{list(world)}, unseen_classes=[...]) (the variable '
                '`zero_shot_split` of projects/toy_world/configs/_base_/datasets/'
                'zegot_toy.py), '
                'or generate the world with the default categories.'
            ) from None
        return world
