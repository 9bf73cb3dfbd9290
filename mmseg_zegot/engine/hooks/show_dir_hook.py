# Copyright (c) mmseg_zegot contributors. All rights reserved.
import os.path as osp
from typing import Optional, Sequence

import mmcv
from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample

from mmseg_zegot.visualization import render_overlay


@HOOKS.register_module()
class ZegOTShowDirHook(Hook):
    """Write a prediction picture for every test image (``tools/test.py
    --show-dir``).

    Each picture, ``<out_dir>/<image stem>_overlay.png``, is the image
    blended with its predicted label map, next to a legend of the classes
    present, named by the test dataset's ``classes`` (unseen ones marked
    from its ``unseen_classes``). Same drawing as
    :class:`~mmseg_zegot.apis.ZegOTInferencer`.

    Args:
        out_dir (str): The folder to write to (created if missing).
        opacity (float): Weight of the label colours. Default: 0.5.
    """

    def __init__(self, out_dir: str, opacity: float = 0.5) -> None:
        if not out_dir:
            raise ValueError('ZegOTShowDirHook needs `out_dir`, the folder '
                             'to write the pictures to')
        if not 0.0 <= opacity <= 1.0:
            raise ValueError(f'ZegOTShowDirHook: `opacity` must be in '
                             f'[0, 1], got {opacity}')
        self.out_dir = out_dir
        self.opacity = opacity

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence[SegDataSample]] = None
                        ) -> None:
        """Draw the predictions of one test batch."""
        meta = runner.test_dataloader.dataset.metainfo
        classes = meta['classes']
        unseen = meta.get('unseen_classes', ())
        for sample in outputs:
            image = mmcv.imread(sample.img_path, channel_order='rgb')
            label = sample.pred_sem_seg.data[0].cpu().numpy()
            picture, _ = render_overlay(image, label, classes,
                                        opacity=self.opacity, unseen=unseen)
            stem = osp.splitext(osp.basename(sample.img_path))[0]
            mmcv.imwrite(mmcv.rgb2bgr(picture),
                         osp.join(self.out_dir, f'{stem}_overlay.png'))
