# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""A probe for the distributed tests: after every training iteration, each
rank saves its own copy of the trainable parameters (the prompt
``contexts`` among them) to ``<work_dir>/rank_state/iter<i>_rank<r>.pt``;
when the process exits (after the tool's ``main()`` has returned), each
rank writes the names of its native threads still running to
``<work_dir>/rank_state/exit_threads_rank<r>.json``.

The distributed run imports it through ``custom_imports`` (the test puts
this folder on ``PYTHONPATH``); it is not part of the package.
"""
import atexit
import json
import os
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class RankStateProbeHook(Hook):
    """Save every rank's trainable parameters after each iteration, and
    the native threads alive when the process exits."""

    priority = 'LOWEST'

    def after_run(self, runner) -> None:
        path = osp.join(runner.work_dir, 'rank_state',
                        f'exit_threads_rank{get_rank()}.json')
        atexit.register(write_thread_names, path)

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


def write_thread_names(path: str) -> None:
    """Write the names of this process's native threads (Linux) to
    ``path``."""
    task = '/proc/self/task'
    names = []
    for thread in sorted(os.listdir(task)):
        with open(osp.join(task, thread, 'comm')) as f:
            names.append(f.read().strip())
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(names, f)
