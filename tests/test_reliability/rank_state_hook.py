# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""A probe for the distributed tests: after every training iteration, each
rank saves its own copy of the trainable parameters (the prompt
``contexts`` among them) to ``<work_dir>/rank_state/iter<i>_rank<r>.pt``.

The distributed run imports it through ``custom_imports`` (the test puts
this folder on ``PYTHONPATH``); it is not part of the package.
"""
import os
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class RankStateProbeHook(Hook):
    """Save every rank's trainable parameters after each iteration."""

    priority = 'LOWEST'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        state = {name: param.detach().clone()
                 for name, param in model.named_parameters()
                 if param.requires_grad}
        folder = osp.join(runner.work_dir, 'rank_state')
        os.makedirs(folder, exist_ok=True)
        torch.save(state, osp.join(
            folder, f'iter{runner.iter + 1}_rank{get_rank()}.pt'))
