# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Open-vocabulary inference with a trained ZegOT checkpoint.

Shapes: H×W label maps at each image's original size, values in
``[0, K)`` for a vocabulary of K class names.
"""
import logging
import math
import os
import os.path as osp
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar
from mmseg.registry import MODELS

from mmseg_zegot.datasets.file_checks import check_sample_files
from mmseg_zegot.datasets.splits import check_class_names
from mmseg_zegot.utils import load_config, load_segmentor_checkpoint
from mmseg_zegot.visualization import render_overlay

#: File name endings read as images when a folder is given.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp')
#: Test-pipeline transforms that need ground truth; dropped for inference.
ANNOTATION_TRANSFORMS = ('LoadAnnotations', 'ZegOTZeroShotLabels')

InputType = Union[str, Path, np.ndarray]
#: Whole-image inference predicts at most this many times the pixels of the
#: training input size (``model.data_preprocessor.size``) without resizing.
MAX_PIXELS_FACTOR = 4
#: The limit when the config has no training input size (1024×1024).
DEFAULT_MAX_PIXELS = 1024 * 1024


def check_vocabulary(classes, key: str = 'classes') -> Tuple[str, ...]:
    """The class names as a tuple, or ValueError naming ``key``.

    Args:
        classes (Sequence[str]): Class names: at least two, none empty or
            blank, no name twice (:func:`check_class_names`).
        key (str): The argument or option the names came from.
    """
    if (isinstance(classes, Sequence) and not isinstance(classes, str)
            and len(classes) < 2):
        raise ValueError(
            f'{key} must name at least two classes, got {list(classes)}: '
            'every pixel gets one of the classes, so a single class would '
            "cover the whole image (add e.g. 'background' or 'other')")
    return check_class_names(classes, key)


def collect_inputs(inputs) -> List[Tuple[InputType, str]]:
    """Expand the inputs into ``(image, stem)`` pairs.

    Args:
        inputs: An image path, a folder (its images, sorted by name, not
            recursive), an H×W×3 BGR uint8 array (as ``mmcv.imread``
            returns), or a list of these.

    Returns:
        list[tuple]: Each image (a path string or an array) and the stem of
        its output files (the file stem, or ``array_<i>`` for the i-th
        array).

    Raises:
        CorruptedFileError: For an image file that is empty, truncated or
            cannot be decoded, naming it.
        ValueError: For an array that is not H×W×3 uint8 (see
            :func:`check_image_array`).
    """
    if isinstance(inputs, (str, Path, np.ndarray)):
        inputs = [inputs]
    items = []
    for item in inputs:
        if isinstance(item, np.ndarray):
            check_image_array(item, f'array_{len(items)}')
            items.append((item, f'array_{len(items)}'))
            continue
        path = str(item)
        if osp.isdir(path):
            names = sorted(name for name in os.listdir(path)
                           if name.lower().endswith(IMAGE_EXTENSIONS))
            if not names:
                raise ValueError(f'The folder {path} holds no image '
                                 f'({", ".join(IMAGE_EXTENSIONS)})')
            items += [(osp.join(path, name), osp.splitext(name)[0])
                      for name in names]
        elif osp.isfile(path):
            check_sample_files(dict(img_path=path), decode=True)
            items.append((path, osp.splitext(osp.basename(path))[0]))
        else:
            raise FileNotFoundError(f'No image or folder at {path}')
    if not items:
        raise ValueError('No input image given')
    return items


def check_image_array(array: np.ndarray, name: str) -> None:
    """Refuse an array that is not an H×W×3 BGR uint8 image.

    The pipeline would fail on four channels with a bare ``RuntimeError``
    and read float [0, 1] or uint16 pixels as if they were 0-255: a garbage
    prediction without any error.

    Raises:
        ValueError: Naming the array (``name``), what it is and the
            conversion.
    """
    if array.dtype != np.uint8:
        raise ValueError(
            f'{name} is a {array.dtype} array; the inferencer takes H×W×3 '
            'BGR uint8 arrays (0-255, as mmcv.imread returns). Convert it, '
            'e.g. (array * 255).round().astype(np.uint8) for floats in '
            '[0, 1], (array >> 8).astype(np.uint8) for uint16.')
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(
            f'{name} has the shape {array.shape}; the inferencer takes H×W×3 '
            'BGR uint8 arrays. Convert it, e.g. cv2.cvtColor(array, '
            'cv2.COLOR_BGRA2BGR) for BGRA, cv2.COLOR_GRAY2BGR for grey.')


def _inference_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline without ground truth, loading paths and
    arrays alike (mmseg's ``InferencerLoader``)."""
    pipeline = cfg.get('test_pipeline') or cfg.test_dataloader.dataset.get(
        'pipeline')
    if not pipeline:
        raise ValueError('The config has neither `test_pipeline` nor '
                         '`test_dataloader.dataset.pipeline`: add the test '
                         'pipeline (LoadImageFromFile ... PackSegInputs)')
    steps = []
    for step in pipeline:
        step = dict(step)
        if step['type'] in ANNOTATION_TRANSFORMS:
            continue
        if step['type'] == 'LoadImageFromFile':
            step['type'] = 'InferencerLoader'
        steps.append(step)
    if not any(step['type'] == 'InferencerLoader' for step in steps):
        raise ValueError('The test pipeline of the config has no '
                         'LoadImageFromFile step to load the inputs with')
    return Compose(steps)


class ZegOTInferencer:
    """Segment images with any vocabulary: the class names given at run time
    replace the training ones.

    The model comes from the config; its weights from ``checkpoint``, a full
    training checkpoint (``state_dict`` and ``meta``) or a published one
    (trainable weights only; the frozen CLIP is then read from the file the
    config's encoders name in ``pretrained``). Class names never come from
    the checkpoint: they are the ``classes`` of each call, else the config's
    (``class_names`` or ``zero_shot_split`` of the model). Unlike mmseg's
    ``init_model``, nothing falls back to the Cityscapes classes.

    Seen-class calibration (the head's ``seen_bias``): the names of the
    config's seen classes that are in the vocabulary are calibrated as seen
    (:meth:`ZegOTSegmentor.set_test_vocabulary`); with no such name nothing
    is calibrated.

    Example:
        >>> inferencer = ZegOTInferencer('configs/zegot/zegot_vitb16_voc.py',
        ...                              'zegot_voc.pth', device='cpu')
        >>> result = inferencer('demo.jpg', classes=['cat', 'dog', 'grass'])
        >>> result[0]['label'].shape  # H×W, values in {0, 1, 2}

    Args:
        config (str | Config): A ZegOT config (``ZegOTSegmentor`` model with
            a test pipeline).
        checkpoint (str): The checkpoint file.
        device (str | torch.device, optional): Where the model runs.
            Default: ``'cuda'`` if available, else ``'cpu'``.
        max_pixels (int, optional): With whole-image inference
            (``model.test_cfg.mode='whole'``), larger inputs are downscaled
            to this many pixels, with a warning, and their predictions
            resized back. Default: :data:`MAX_PIXELS_FACTOR` times the
            training input size (``model.data_preprocessor.size``), else
            :data:`DEFAULT_MAX_PIXELS`.

    Attributes:
        model (ZegOTSegmentor): The segmentor, in eval mode.
        metadata (dict): The checkpoint's plain metadata, for information
            only (its class names are not used).
    """

    def __init__(self,
                 config: Union[str, Config],
                 checkpoint: str,
                 device: Union[str, torch.device, None] = None,
                 max_pixels: Optional[int] = None) -> None:
        cfg = load_config(config) if isinstance(config, (str, Path)) else (
            config)
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        model = MODELS.build(cfg.model)
        if not hasattr(model, 'set_test_vocabulary'):
            raise ValueError(
                f'model.type={cfg.model.get("type")!r} cannot change its '
                'vocabulary: ZegOTInferencer needs a ZegOTSegmentor config')
        self.metadata = load_segmentor_checkpoint(model, checkpoint)
        if device is None:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        self.model = model.to(device).eval()
        self.pipeline = _inference_pipeline(cfg)
        self.max_pixels = self._whole_image_limit(max_pixels)

    def _whole_image_limit(self, max_pixels: Optional[int]) -> Optional[int]:
        """The most pixels predicted without resizing: None for slide
        inference (its memory is bounded by the crop), else ``max_pixels``
        or :data:`MAX_PIXELS_FACTOR` times the training input size."""
        if self.model.test_cfg.get('mode', 'whole') != 'whole':
            return None
        if max_pixels is not None:
            return max_pixels
        size = getattr(self.model.data_preprocessor, 'size', None)
        return (MAX_PIXELS_FACTOR * size[0] * size[1]
                if size else DEFAULT_MAX_PIXELS)

    @property
    def default_classes(self) -> Tuple[str, ...]:
        """The config's classes, used when no vocabulary is given."""
        return self.model.class_names

    def __call__(self,
                 inputs,
                 classes: Optional[Sequence[str]] = None,
                 seen_classes: Optional[Sequence[str]] = None,
                 out_dir: Optional[str] = None,
                 opacity: float = 0.5,
                 show_progress: bool = True) -> List[Dict]:
        """Segment the inputs with the vocabulary ``classes``.

        Args:
            inputs: An image path, a folder of images, an H×W×3 BGR uint8
                array, or a list of these (see :func:`collect_inputs`).
            classes (Sequence[str], optional): The K class names to segment
                with. Default: the config's classes.
            seen_classes (Sequence[str], optional): Names of ``classes`` to
                calibrate as seen; default: those the config's model was
                trained on.
            out_dir (str, optional): If given, write ``<stem>_overlay.png``
                (the image blended with the coloured prediction and a legend
                of the classes present) and ``<stem>_label.png`` (the label
                map, uint8, or uint16 beyond 255 classes) for every input.
            opacity (float): Weight of the colours in the overlay.
            show_progress (bool): Show a progress bar for several inputs.

        Returns:
            list[dict]: Per input, in order: ``label`` (H×W int64 at the
            original size, values in ``[0, K)``), ``classes`` (the K names)
            and ``img_path`` (None for arrays).
        """
        if not 0.0 <= opacity <= 1.0:
            raise ValueError(f'opacity must be in [0, 1], got {opacity}')
        names = self.default_classes if classes is None else (
            check_vocabulary(classes))
        if seen_classes is not None:
            seen_classes = tuple(seen_classes)
        self.model.set_test_vocabulary(names, seen_classes)
        items = collect_inputs(inputs)
        if out_dir is not None:
            stems = [stem for _, stem in items]
            repeated = sorted({s for s in stems if stems.count(s) > 1})
            if repeated:
                raise ValueError(
                    f'Several inputs are named {repeated}: their pictures '
                    f'would overwrite each other in {out_dir}; rename them '
                    'or run them separately')
        progress = ProgressBar(len(items)) if (show_progress
                                               and len(items) > 1) else None
        results = []
        for image, stem in items:
            label = self._predict(image, stem)
            if out_dir is not None:
                self._save(image, label, names, osp.join(out_dir, stem),
                           opacity)
            results.append(dict(
                label=label, classes=names,
                img_path=None if isinstance(image, np.ndarray) else image))
            if progress is not None:
                progress.update()
        if progress is not None:
            progress.file.write('\n')
        return results

    def _predict(self, image: InputType, stem: str) -> np.ndarray:
        """The H×W label map of one image."""
        data = pseudo_collate([self._fit(self.pipeline(image), stem)])
        with torch.no_grad():
            sample = self.model.test_step(data)[0]
        return sample.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)

    def _fit(self, data: dict, stem: str) -> dict:
        """Downscale an input larger than :attr:`max_pixels` for whole-image
        inference (to whole patches), with a warning; the prediction is
        resized back to the image's size (``ori_shape``) as after any
        test-time ``Resize``.

        A 4000×3000 photo with a whole-image config would otherwise ask for
        hundreds of GB (the ViT's attention and the OT plan grow with the
        square of the number of patches).
        """
        inputs = data['inputs']  # 3×H×W, uint8
        height, width = inputs.shape[-2:]
        if self.max_pixels is None or height * width <= self.max_pixels:
            return data
        scale = math.sqrt(self.max_pixels / (height * width))
        patch = getattr(self.model.image_encoder, 'patch_size', (1, 1))
        size = tuple(max(step, int(side * scale) // step * step)
                     for side, step in zip((height, width), patch))
        data['inputs'] = F.interpolate(
            inputs[None].float(), size=size, mode='bilinear',
            align_corners=False, antialias=True)[0].round().clamp(
                0, 255).to(inputs.dtype)
        data['data_samples'].set_metainfo(dict(img_shape=size))
        crop = getattr(self.model.data_preprocessor, 'size', None) or (512,
                                                                       512)
        stride = tuple(side * 2 // 3 for side in crop)
        print_log(
            f'{stem}: {width}×{height} pixels is more than whole-image '
            f'inference takes for this model ({self.max_pixels} pixels, '
            f'{MAX_PIXELS_FACTOR} × its training input size): predicted at '
            f'{size[1]}×{size[0]} and resized back. For full resolution use '
            'slide inference: --cfg-options model.test_cfg.mode=slide '
            f'model.test_cfg.crop_size="({crop[0]},{crop[1]})" '
            f'model.test_cfg.stride="({stride[0]},{stride[1]})".',
            logger='current', level=logging.WARNING)
        return data

    @staticmethod
    def _save(image: InputType, label: np.ndarray, names: Sequence[str],
              prefix: str, opacity: float) -> None:
        """Write ``<prefix>_overlay.png`` and ``<prefix>_label.png``."""
        if isinstance(image, np.ndarray):
            rgb = mmcv.bgr2rgb(image)
        else:
            rgb = mmcv.imread(image, channel_order='rgb')
        picture, _ = render_overlay(rgb, label, names, opacity=opacity)
        mmcv.imwrite(mmcv.rgb2bgr(picture), f'{prefix}_overlay.png')
        dtype = np.uint8 if len(names) <= 255 else np.uint16
        mmcv.imwrite(label.astype(dtype), f'{prefix}_label.png')
