# Copyright (c) mmseg_zegot contributors. All rights reserved.
import os.path as osp

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class ZegOTLoadFromCheckHook(Hook):
    """Stop at start-up when ``load_from`` names a checkpoint that another
    run writes and that is not there.

    A transductive config starts from the half-way checkpoint of its
    inductive run (``load_from = 'work_dirs/<inductive>/iter_<N>.pth'``).
    Without this hook a missing file is reported only after the datasets
    and CLIP are loaded, as a bare file name; with it, before CLIP is
    loaded, naming the run that writes the file. Paths with a scheme
    (``s3://``, ``https://``) are left to the checkpoint loader.

    Args:
        source_config (str): The config whose training run saves the
            checkpoint (and keeps it: ``default_hooks.checkpoint.keep_iters``).
        source_iter (int): The iteration at which it is saved.
    """

    priority = 'VERY_HIGH'

    def __init__(self, source_config: str, source_iter: int) -> None:
        self.source_config = source_config
        self.source_iter = source_iter

    def before_run(self, runner) -> None:
        """Raise if ``load_from`` is a local path that does not exist."""
        path = runner.cfg.get('load_from')
        if path is None or '://' in str(path) or osp.isfile(path):
            return
        raise FileNotFoundError(
            f'`load_from`={path!r} does not exist. It is the checkpoint that '
            f'`python tools/train.py {self.source_config}` saves at '
            f'iteration {self.source_iter} (and keeps): run that first, or '
            'point `load_from` at your copy with `--cfg-options '
            'load_from=PATH`.')
