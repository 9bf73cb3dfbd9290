# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""How to fix each problem the dataset checker finds, per kind of dataset
(VOC, Context, COCO-Stuff: mmseg's converters and the archives' layouts)."""
import os.path as osp
from typing import Dict, Optional

import mmseg
from mmseg.datasets import (
    COCOStuffDataset,
    PascalContextDataset,
    PascalContextDataset59,
    PascalVOCDataset,
)
from mmseg.registry import DATASETS

from ..zero_shot import (
    ZegOTCOCOStuffDataset,
    ZegOTPascalContext59Dataset,
    ZegOTPascalVOC20Dataset,
)

#: Where the datasets' preparation is described.
DOCS = 'docs/data_preparation.md'
CONVERTER_DIR = osp.join(
    osp.dirname(mmseg.__file__), '.mim', 'tools', 'dataset_converters')


def converter(name: str) -> str:
    """Path of one of mmseg's dataset converters, relative to the working
    directory when it lies below it."""
    path = osp.join(CONVERTER_DIR, name)
    relative = osp.relpath(path)
    return path if relative.startswith('..') else relative


def dataset_kind(dataset_type) -> Optional[str]:
    """``'voc'``, ``'context'``, ``'coco-stuff'`` or None (another dataset),
    from a dataset config's ``type``."""
    cls = (DATASETS.get(dataset_type)
           if isinstance(dataset_type, str) else dataset_type)
    if not isinstance(cls, type):
        return None
    for kind, bases in (('voc', (PascalVOCDataset, ZegOTPascalVOC20Dataset)),
                        ('context', (PascalContextDataset,
                                     PascalContextDataset59,
                                     ZegOTPascalContext59Dataset)),
                        ('coco-stuff', (COCOStuffDataset,
                                        ZegOTCOCOStuffDataset))):
        if issubclass(cls, bases):
            return kind
    return None


def fixes(kind: Optional[str]) -> Dict[str, str]:
    """How to fix each problem, for a dataset kind (see :func:`dataset_kind`).

    Keys: ``root`` (what ``data_root`` is), ``images``, ``labels``,
    ``aug_labels`` (VOC's SBD labels), ``values``, ``channels``, ``size``,
    ``unreadable``; the advice for other datasets names the config keys.
    """
    voc_tar = ('extract VOCtrainval_11-May-2012.tar so that data_root is '
               'its VOCdevkit/VOC2012 folder')
    voc_aug = (f'run `python {converter("voc_aug.py")} data/VOCdevkit '
               'data/VOCdevkit/VOCaug --nproc 8` on the extracted SBD '
               'benchmark.tgz (writes SegmentationClassAug/ and '
               'ImageSets/Segmentation/aug.txt)')
    context = (f'run `python {converter("pascal_context.py")} data/VOCdevkit '
               'data/VOCdevkit/VOC2010/trainval_merged.json` (needs the '
               'Detail API; writes SegmentationClassContext/ and '
               'ImageSets/SegmentationContext/{train,val}.txt)')
    coco = (f'run `python {converter("coco_stuff164k.py")} <data_root> '
            '--nproc 8` after unzipping stuffthingmaps_trainval2017.zip into '
            '<data_root>/annotations/ (writes *_labelTrainIds.png)')
    by_kind = {
        'voc': dict(
            root='the VOCdevkit/VOC2012 folder of the VOC 2012 tar',
            images=f'{voc_tar} (JPEGImages/)',
            labels=(f'{voc_tar} (SegmentationClass/, '
                    'ImageSets/Segmentation/{train,val}.txt)'),
            aug_labels=voc_aug,
            values=('VOC labels hold 0 (background), 1..20 and 255 (object '
                    'borders), read with reduce_zero_label=True: take '
                    f'SegmentationClass/ from the VOC tar, or {voc_aug}')),
        'context': dict(
            root='the VOCdevkit/VOC2010 folder of the VOC 2010 tar',
            images=('extract VOCtrainval_03-May-2010.tar so that data_root '
                    'is its VOCdevkit/VOC2010 folder (JPEGImages/)'),
            labels=context,
            values=('the labels must hold 0 (background) and 1..59, read '
                    f'with reduce_zero_label=True: {context}')),
        'coco-stuff': dict(
            root=('the folder holding images/{train,val}2017 and '
                  'annotations/{train,val}2017'),
            images=('unzip train2017.zip and val2017.zip into '
                    '<data_root>/images/'),
            labels=coco,
            values=('the labels must be train IDs (0..170, 255), not the '
                    f'raw stuffthingmaps PNGs (0..181): {coco}')),
    }
    found = dict(
        root='the folder that data_prefix and ann_file are relative to',
        images='check data_root, data_prefix.img_path and img_suffix',
        labels='check data_root, data_prefix.seg_map_path and seg_map_suffix',
        values=('check reduce_zero_label and metainfo.classes against the '
                'label files'),
        channels=('labels must be single-channel 8-bit PNGs of class indices '
                  '(mode L or P) as the converters write them; a colour (RGB) '
                  'rendering of the labels cannot be read as classes'),
        size=('an image and its label must have the same size: the label '
              'belongs to another image, or one of them was resized; '
              'regenerate the labels'),
        unreadable=('the file is truncated or not an image: download or '
                    'convert it again'))
    found.update(by_kind.get(kind, {}))
    found.setdefault('aug_labels', found['labels'])
    return found
