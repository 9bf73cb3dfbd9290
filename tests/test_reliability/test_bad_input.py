# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Bad input, as an attacker or a careless user gives it (issue 18): label
maps that are not 8-bit class indices and the advice for inputs that are
not whole patches in slide inference. Each gets an error naming the file or
key and the fix, never silently wrong output. (The other cases of the issue
are tested next to their code: see docs/reliability.md, "Bad input"; toy
worlds generated with other categories in
projects/toy_world/tests/test_toy_dataset.py.)"""
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_voc_dataset
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from PIL import Image
from test_apis.inference_models import write_tiny_zegot

from mmseg_zegot.datasets import CorruptedFileError, ZegOTPascalVOC20Dataset

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')]
FIX = ('Label maps must be single-channel 8-bit PNGs of class indices (mode '
       "L or P, 255 = ignore), as mmseg's dataset converters write them: "
       'convert the labels to class indices (tools/check_dataset.py CONFIG '
       'lists every such file)')


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


@pytest.fixture
def voc(tmp_path):
    """4 training and 3 validation samples, 40x48, VOC layout."""
    return Path(make_voc_dataset(tmp_path / 'voc', num_train=4, num_val=3))


def voc_dataset(root, split='train', **kwargs):
    return ZegOTPascalVOC20Dataset(
        data_root=str(root),
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        ann_file=f'ImageSets/Segmentation/{split}.txt',
        pipeline=PIPELINE, **kwargs)


def label_path(root, index):
    return root / 'SegmentationClass' / f'2007_{index:06d}.png'


@pytest.mark.parametrize('split,index', [('train', 1), ('val', 5)])
def test_16_bit_label_map_is_refused_naming_the_file(voc, split, index):
    """Labels x256 in a 16-bit PNG were read modulo 256: every pixel 255
    (ignored), a loss of exactly 0, NaN test metrics, rc 0."""
    path = label_path(voc, index)
    labels = np.asarray(Image.open(path)).astype(np.uint16) * 256
    Image.fromarray(labels).save(path)
    mode = Image.open(path).mode
    assert mode.startswith('I')
    dataset = voc_dataset(voc, split, test_mode=split == 'val')
    with pytest.raises(CorruptedFileError) as info:
        dataset[index - (4 if split == 'val' else 0)]
    assert (f'the label map {path} is a single-channel image of mode {mode} '
            '(16/32-bit or float); mmseg reads label maps as 8 bits, so its '
            'values would be taken modulo 256') in str(info.value)
    assert FIX in str(info.value)


def test_rgb_label_map_is_refused_naming_the_file(voc):
    """An RGB label map failed with an IndexError or a size mismatch that
    did not name the file."""
    path = label_path(voc, 2)
    labels = np.asarray(Image.open(path))
    Image.fromarray(np.stack([labels] * 3, axis=-1)).save(path)
    with pytest.raises(CorruptedFileError) as info:
        voc_dataset(voc)[2]
    assert (f'the label map {path} has 3 channels (mode RGB): a colour '
            'rendering of the labels cannot be read as class indices. '
            + FIX) in str(info.value)
    assert info.value.paths == (str(path), )


def test_slide_inference_never_advises_slide_inference(tmp_path):
    """An image smaller than the slide crop is one window of its own size;
    when that is not whole patches, the advice was "use slide" although
    slide was in use. Padding the test images is what works in both modes
    (or the backbone pads the input itself, and there is no error)."""
    cfg = Config.fromfile(write_tiny_zegot(tmp_path, pretrained=False))
    cfg.model.test_cfg = dict(mode='slide', crop_size=(32, 32),
                              stride=(16, 16))
    model = MODELS.build(cfg.model).eval()
    metas = [dict(img_shape=(20, 28), ori_shape=(20, 28))]
    try:
        with torch.no_grad():
            logits = model.slide_inference(torch.zeros(1, 3, 20, 28), metas)
    except ValueError as error:
        message = str(error)
        assert "mode='slide'" not in message
        assert ('For inference pad test images with '
                '`model.data_preprocessor.test_cfg=dict(size_divisor=8)` '
                '(whole or slide') in message
    else:
        assert logits.shape == (1, len(model.class_names), 20, 28)
