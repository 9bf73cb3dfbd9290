# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Checks that the image and label files of a sample can be used.

mmcv and mmseg read files with ``mmcv.imfrombytes``, which fails in ways
that do not say which file is at fault: OpenCV returns None for a truncated
file (mmcv then asserts, mmseg's ``LoadAnnotations`` fails with
``'NoneType' object has no attribute 'squeeze'``), Pillow raises "cannot
identify image file <_io.BytesIO ...>" for an empty one, and with
``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` (which some libraries set) a
truncated label map decodes with its missing rows filled with 0, i.e.
background, without any error. A label map of another size than its image
is not an error at all until a transform or the metric trips over it.

:func:`check_sample_files` looks at the files themselves and raises
:class:`CorruptedFileError` naming the file. Its quick form reads each file
once more (the pipeline reads it anyway, so it is in the page cache) and
parses only its header, checks PNG files chunk by chunk (CRCs, the end
marker) and JPEG files for their end marker, checks that a label map is
single-channel 8-bit (mmseg casts label maps to uint8: a 16-bit map would
be read modulo 256, an RGB one fails later without naming the file), and
compares the label's size with the image's: about 0.1 ms for a VOC-sized
pair, against about 2 ms for mmcv's and mmseg's loaders. ``decode=True``
also decodes both files with OpenCV and Pillow.
"""
import io
from typing import Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmengine import fileio
from PIL import Image

#: The sample keys of an image and a label file, and what they are called.
FILE_KEYS = (('img_path', 'image'), ('seg_map_path', 'label map'))
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_JPEG_START, _JPEG_END = b'\xff\xd8', b'\xff\xd9'
_DECODERS = ('cv2', 'pillow')
_LABEL = FILE_KEYS[1][1]
#: Pillow modes a label map may have: 8-bit class indices.
LABEL_MODES = ('L', 'P')


class CorruptedFileError(ValueError):
    """An image or label file that cannot be used: unreadable, empty,
    truncated, undecodable, a label map of another size than its image, or
    one that is not 8-bit single-channel.

    Args:
        message (str): What is wrong, naming the file(s).
        paths (Sequence[str]): The files at fault.
    """

    def __init__(self, message: str, paths: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.paths = tuple(paths)


def _read(path: str, what: str, backend_args: Optional[dict]) -> bytes:
    try:
        content = fileio.get(path, backend_args=backend_args)
    except OSError as error:
        raise CorruptedFileError(
            f'the {what} {path} cannot be read ({error})', [path]) from error
    if not content:
        raise CorruptedFileError(f'the {what} {path} is empty (0 bytes)',
                                 [path])
    return content


def _size(content: bytes, path: str, what: str) -> Tuple[int, int]:
    """(width, height) from the header; PNG files are checked in full, JPEG
    files for their end marker (never inside compressed data), label maps
    for their mode."""
    if content.startswith(_JPEG_START) and content.rfind(_JPEG_END) < 0:
        raise CorruptedFileError(
            f'the {what} {path} is truncated (no JPEG end marker)', [path])
    try:
        with Image.open(io.BytesIO(content)) as image:
            size, mode = image.size, image.mode
            if content.startswith(_PNG_SIGNATURE):
                image.verify()
    except Exception as error:  # Pillow raises many types
        raise CorruptedFileError(
            f'the {what} {path} is truncated or corrupted ({error})',
            [path]) from error
    if what == _LABEL and mode not in LABEL_MODES:
        raise CorruptedFileError(_label_mode_problem(path, mode), [path])
    return size


def _label_mode_problem(path: str, mode: str) -> str:
    """Why a label map of Pillow mode ``mode`` cannot be read as classes.

    mmseg's ``LoadAnnotations`` casts the decoded label map to uint8: a
    16-bit map is read modulo 256 (256 becomes 0, 65280 becomes 255, the
    ignore index), a colour map becomes an H×W×3 array.
    """
    bands = Image.getmodebands(mode) if mode in Image.MODES else None
    if bands == 1:
        why = (f'is a single-channel image of mode {mode} (16/32-bit or '
               'float); mmseg reads label maps as 8 bits, so its values '
               'would be taken modulo 256 and become other classes or the '
               'ignore index 255')
    else:
        why = (f'has {bands or "several"} channels (mode {mode}): a colour '
               'rendering of the labels cannot be read as class indices')
    return (f'the label map {path} {why}. Label maps must be single-channel '
            '8-bit PNGs of class indices (mode L or P, 255 = ignore), as '
            "mmseg's dataset converters write them: convert the labels to "
            'class indices (tools/check_dataset.py CONFIG lists every such '
            'file)')


def _decode(content: bytes, path: str, what: str) -> None:
    """Decode with every backend mmcv's loaders use."""
    for backend in _DECODERS:
        try:
            array = mmcv.imfrombytes(content, flag='unchanged',
                                     backend=backend)
        except Exception as error:  # decoders raise many types
            raise CorruptedFileError(
                f'the {what} {path} cannot be decoded ({backend}: {error})',
                [path]) from error
        if not isinstance(array, np.ndarray) or array.size == 0:
            raise CorruptedFileError(
                f'the {what} {path} cannot be decoded ({backend} returned '
                'no pixels: the file is truncated or corrupted)', [path])


def check_sample_files(data_info: dict,
                       backend_args: Optional[dict] = None,
                       decode: bool = False) -> None:
    """Check the image and label map of one sample.

    Args:
        data_info (dict): The sample as a dataset's ``get_data_info`` gives
            it (``img_path`` and, when labelled, ``seg_map_path``).
        backend_args (dict, optional): As for ``mmengine.fileio.get``.
        decode (bool): Also decode both files (slower: what a failed
            pipeline or a check of a whole test set needs). Defaults to
            False.

    Raises:
        CorruptedFileError: If a file cannot be read, is empty, truncated or
            cannot be decoded, if the label map is not single-channel 8-bit
            (mode L or P), or if its size differs from the image's (naming
            both files).
    """
    sizes = {}
    for key, what in FILE_KEYS:
        path = data_info.get(key)
        if path is None:
            continue
        content = _read(path, what, backend_args)
        sizes[key] = _size(content, path, what)
        if decode:
            _decode(content, path, what)
    if len(sizes) == 2 and sizes['img_path'] != sizes['seg_map_path']:
        (image_w, image_h), (label_w, label_h) = (sizes['img_path'],
                                                  sizes['seg_map_path'])
        raise CorruptedFileError(
            f'the label map {data_info["seg_map_path"]} is {label_h}x'
            f'{label_w} (HxW) but its image {data_info["img_path"]} is '
            f'{image_h}x{image_w}', [data_info['seg_map_path'],
                                     data_info['img_path']])
