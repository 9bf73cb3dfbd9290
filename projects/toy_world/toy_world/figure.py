# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The picture of the embedded benchmark: toy-world test images, their
ground truth and a trained model's prediction."""
import argparse
import os.path as osp
from typing import Sequence

import numpy as np
from mmengine.config import DictAction
from PIL import Image

from mmseg_zegot.visualization.figures import (
    IGNORE_INDEX,
    save_segmentation_grid,
)


def _options(options: Sequence[str]) -> dict:
    """``key=value`` strings as ``--cfg-options`` parses them."""
    namespace = argparse.Namespace()
    DictAction(option_strings=[], dest='options')(None, namespace,
                                                  list(options))
    return namespace.options


def save_prediction_figure(config: str, checkpoint: str,
                           options: Sequence[str], data_root: str, path: str,
                           num_images: int = 4) -> None:
    """Predict ``num_images`` val images of the toy world and save the grid.

    Args:
        config (str): The model's config file.
        checkpoint (str): Its trained checkpoint.
        options (Sequence[str]): ``--cfg-options`` of the run.
        data_root (str): The toy world's folder.
        path (str): Where to write the PNG.
        num_images (int): Rows of the picture.
    """
    from mmseg.apis import inference_model, init_model

    from mmseg_zegot.utils import load_config
    cfg = load_config(config)
    cfg.merge_from_dict(_options(options))
    model = init_model(cfg, checkpoint, device='cpu')
    with open(osp.join(data_root, 'ImageSets', 'Segmentation',
                       'val.txt')) as file:
        names = file.read().split()[:num_images]
    images, truths, predictions = [], [], []
    for name in names:
        image_path = osp.join(data_root, 'JPEGImages', f'{name}.png')
        images.append(np.asarray(Image.open(image_path).convert('RGB')))
        raw = np.asarray(Image.open(
            osp.join(data_root, 'SegmentationClass', f'{name}.png')))
        truth = raw.astype(np.int64) - 1  # VOC convention: 0 = background
        truth[(raw == 0) | (raw == IGNORE_INDEX)] = IGNORE_INDEX
        truths.append(truth)
        result = inference_model(model, image_path)
        predictions.append(result.pred_sem_seg.data[0].numpy())
    evaluated = [
        np.where(truth == IGNORE_INDEX, IGNORE_INDEX, prediction)
        for truth, prediction in zip(truths, predictions)
    ]
    # Background is not a class of the protocol (as in VOC-20): the model
    # names every pixel, the metric reads the labelled ones.
    save_segmentation_grid(path, images, [truths, predictions, evaluated],
                           ['ground truth', 'ZegOT', 'ZegOT, scored pixels'],
                           model.class_names,
                           unseen=[
                               n for n in model.class_names
                               if n not in model.seen_classes
                           ])
