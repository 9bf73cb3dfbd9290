# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Corrupted or unreadable image and label files.

By default a clear error names the file and the fix. With
``skip_corrupted=True`` the sample is skipped with a warning naming it and
a count: training loads another sample in its place; a test-mode
(validation/test) dataset leaves it out of its list. Nothing is ever
decoded into made-up labels.
"""
import io
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import make_voc_dataset
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmseg.datasets.transforms import LoadAnnotations
from PIL import Image, ImageFile
from reliability_runs import TRAIN_SETS, tiny_options, train, write_tiny_clip
from torch.utils.data import DataLoader

from mmseg_zegot.datasets import CorruptedFileError, ZegOTPascalVOC20Dataset

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


@pytest.fixture
def voc(tmp_path):
    """4 training and 3 validation samples, 40x48, VOC layout."""
    return Path(make_voc_dataset(tmp_path / 'voc', num_train=4, num_val=3))


def image(root, index):
    return root / 'JPEGImages' / f'2007_{index:06d}.jpg'


def label(root, index):
    return root / 'SegmentationClass' / f'2007_{index:06d}.png'


def build(root, split='train', pipeline=PIPELINE, **kwargs):
    return ZegOTPascalVOC20Dataset(
        data_root=str(root),
        data_prefix=dict(img_path='JPEGImages',
                         seg_map_path='SegmentationClass'),
        ann_file=f'ImageSets/Segmentation/{split}.txt',
        pipeline=pipeline,
        **kwargs)


def empty(path):
    path.write_bytes(b'')


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def not_an_image(path):
    path.write_bytes(b'this is not an image\n' * 20)


def remove(path):
    path.unlink()


def scramble_png_data(path):
    """Overwrite the compressed pixels of a PNG and fix the chunk's CRC: the
    file structure is intact, decoding fails."""
    data = bytearray(path.read_bytes())
    start = data.index(b'IDAT') - 4
    length = struct.unpack('>I', data[start:start + 4])[0]
    body = slice(start + 8, start + 8 + length)
    data[body] = bytes(length)
    crc = zlib.crc32(bytes(data[start + 4:start + 8 + length]))
    data[start + 8 + length:start + 12 + length] = struct.pack('>I', crc)
    path.write_bytes(bytes(data))


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings_logged():
    """The warnings mmseg_zegot writes to the current MMEngine logger."""
    logger = MMLogger.get_current_instance()
    handler = Records()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


CASES = [
    (image, empty, 'is empty (0 bytes)'),
    (image, truncate, 'is truncated (no JPEG end marker)'),
    (image, remove, 'cannot be read'),
    (label, empty, 'is empty (0 bytes)'),
    (label, truncate, 'is truncated or corrupted'),
    (label, not_an_image, 'is truncated or corrupted'),
    (label, scramble_png_data, 'cannot be decoded'),
]


@pytest.mark.parametrize('which,corrupt,problem', CASES,
                         ids=[f'{w.__name__}-{c.__name__}'
                              for w, c, _ in CASES])
def test_error_names_the_file_and_the_fix(voc, which, corrupt, problem):
    path = which(voc, 1)
    corrupt(path)
    dataset = build(voc)
    assert dataset[0]['img_path'].endswith('2007_000000.jpg')  # others load
    with pytest.raises(CorruptedFileError) as info:
        dataset[1]
    message = str(info.value)
    assert f'{path} {problem}' in message
    assert 'sample 1' in message and 'skip_corrupted=True' in message
    assert 'ImageSets/Segmentation/train.txt' in message
    assert info.value.paths == (str(path), )


def test_decoding_failure_is_told_apart_from_its_symptom(voc):
    """OpenCV returns None for the scrambled label and mmseg's
    LoadAnnotations fails on it with an AttributeError; the error names the
    file, with the original failure as its cause."""
    scramble_png_data(label(voc, 2))
    dataset = build(voc, pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', imdecode_backend='cv2')])
    with pytest.raises(CorruptedFileError, match='cannot be decoded') as info:
        dataset[2]
    causes = []
    error = info.value
    while error.__cause__ is not None:
        error = error.__cause__
        causes.append(type(error))
    assert causes == [CorruptedFileError, AttributeError]


def test_label_of_another_size_names_both_files(voc):
    path = label(voc, 3)
    Image.open(path).resize((30, 40), Image.NEAREST).save(path)
    with pytest.raises(CorruptedFileError) as info:
        build(voc)[3]
    assert (f'the label map {path} is 40x30 (HxW) but its image '
            f'{image(voc, 3)} is 40x48') in str(info.value)
    assert info.value.paths == (str(path), str(image(voc, 3)))


def test_truncated_label_never_becomes_background(voc, monkeypatch):
    """With Pillow told to accept truncated files (some libraries set it),
    mmseg's loader fills the missing rows of a label map with 0; the
    dataset refuses the file."""
    path = label(voc, 0)
    intact = np.asarray(Image.open(path))
    pixels = intact.copy()
    pixels[20:] = 7  # no 0 in the rows that the truncation loses
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format='PNG', compress_level=0)
    path.write_bytes(buffer.getvalue()[:len(buffer.getvalue()) * 3 // 4])
    monkeypatch.setattr(ImageFile, 'LOAD_TRUNCATED_IMAGES', True)
    stock = LoadAnnotations(reduce_zero_label=False)(
        dict(seg_map_path=str(path), reduce_zero_label=False,
             seg_fields=[]))['gt_seg_map']
    made_up = (stock != pixels)
    assert made_up.any() and (stock[made_up] == 0).all()
    with pytest.raises(CorruptedFileError, match='truncated or corrupted'):
        build(voc)[0]


def test_other_errors_pass_through_unchanged(voc):
    """A pipeline error with intact files is not blamed on the files."""
    dataset = build(voc, pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', reduce_zero_label=False)])
    with pytest.raises(AssertionError, match='reduce_zero_label'):
        dataset[0]


def test_error_crosses_data_loader_workers(voc):
    truncate(label(voc, 0))
    loader = DataLoader(build(voc), batch_size=2, num_workers=1,
                        collate_fn=pseudo_collate)
    batches = iter(loader)
    try:
        next(batches)
    except CorruptedFileError as error:  # re-raised in the main process
        message = str(error)
    del batches  # stop the worker now
    assert str(label(voc, 0)) in message and 'skip_corrupted' in message


def test_training_skips_with_a_warning_and_a_count(voc, warnings_logged):
    bad = {str(image(voc, 1)), str(label(voc, 2))}
    empty(image(voc, 1))
    truncate(label(voc, 2))
    dataset = build(voc, skip_corrupted=True)
    np.random.seed(0)  # mmengine draws the replacement with numpy
    samples = [dataset[index] for _ in range(3) for index in range(4)]
    assert all(s['img_path'] not in bad and s['seg_map_path'] not in bad
               for s in samples)
    # Each sample comes from an intact pair, labels as the file holds them.
    for sample in samples:
        stored = np.asarray(Image.open(sample['seg_map_path'])).astype(int)
        expected = np.where((stored == 0) | (stored == 255), 255, stored - 1)
        np.testing.assert_array_equal(sample['gt_seg_map'], expected)
    skips = [m for m in warnings_logged if 'skipped a sample' in m]
    assert len(skips) == dataset.num_skipped >= 6
    for count, message in enumerate(skips, start=1):
        assert any(path in message for path in bad)
        assert f'has skipped {count} sample(s)' in message


def test_test_mode_leaves_samples_out(voc, warnings_logged):
    truncate(label(voc, 5))
    dataset = build(voc, split='val', test_mode=True, skip_corrupted=True)
    assert len(dataset) == 2
    assert [Path(dataset[i]['img_path']).name for i in range(2)] == [
        '2007_000004.jpg', '2007_000006.jpg']
    assert any(str(label(voc, 5)) in m for m in warnings_logged)
    assert any('left out 1 of 3 samples' in m for m in warnings_logged)
    # Without the switch, the test set stops at the file.
    with pytest.raises(CorruptedFileError, match=str(label(voc, 5))):
        build(voc, split='val', test_mode=True)[1]


def test_switch_must_be_a_bool(voc):
    with pytest.raises(ValueError, match='`skip_corrupted` must be True'):
        build(voc, skip_corrupted='yes')


@pytest.fixture(scope='module')
def tool_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('corrupted_runs')
    data_root = Path(make_voc_dataset(root / 'voc', num_train=4, num_val=2))
    empty(image(data_root, 0))  # in both training lists (train, aug)
    truncate(label(data_root, 4))  # the first validation sample
    options = tiny_options(data_root, write_tiny_clip(root), max_iters=2,
                           warmup=1) + [
        'train_dataloader.sampler.shuffle=False']  # sample 0 comes first
    return root, data_root, options


@pytest.mark.slow
def test_train_tool_stops_naming_the_file(tool_setup):
    root, data_root, options = tool_setup
    code, log = train(root / 'strict', options, check=False)
    assert code != 0
    assert f'{image(data_root, 0)} is empty (0 bytes)' in log
    assert 'set `skip_corrupted=True` in the dataset config' in log


@pytest.mark.slow
def test_train_tool_skips_and_logs(tool_setup):
    root, data_root, options = tool_setup
    switches = [f'{prefix}.skip_corrupted=True' for prefix in
                (*TRAIN_SETS, 'val_dataloader.dataset')]
    _, log = train(root / 'skipping', options + switches)
    assert (f'skipped a sample because the image {image(data_root, 0)} is '
            'empty (0 bytes)') in log
    assert 'This process has skipped 1 sample(s) of this dataset' in log
    assert f'the label map {label(data_root, 4)} is truncated' in log
    assert 'left out 1 of 2 samples whose files are corrupted' in log
    assert 'Iter(val) [1/1]' in log  # evaluated on the intact sample
    assert (root / 'skipping' / 'iter_2.pth').exists()
