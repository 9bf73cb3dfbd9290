# Copyright (c) mmseg_zegot contributors. All rights reserved.
from typing import Optional

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from mmseg_zegot.utils.checkpoint import from_plain, to_plain

#: Checkpoint key of the random-number-generator states.
RNG_KEY = 'rng_state'


def get_torch_rng_state() -> dict:
    """torch's generator states: the CPU one and, once CUDA is in use, the
    current GPU's."""
    state = dict(cpu=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
    return state


def set_torch_rng_state(state: dict) -> None:
    """Restore what :func:`get_torch_rng_state` returned."""
    torch.set_rng_state(state['cpu'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'])


@HOOKS.register_module()
class ZegOTPlainCheckpointHook(Hook):
    """Write checkpoints that load under ``torch.load(weights_only=True)``
    and resume exactly.

    On save, the whole checkpoint (message hub, metadata, scheduler states)
    is converted to tensors and plain Python data; on load, the message hub
    is restored, so ``--resume`` continues logging and scheduling exactly.
    It runs after the other hooks on save, so whatever they add is
    converted too.

    Resuming reproduces the uninterrupted run: MMEngine restores the seed
    and replays the data loader up to the checkpoint's iteration (so the
    data order and the augmentations, drawn by numpy and ``random``, are
    the same), but not torch's generator, which the model draws from
    (dropout). This hook saves torch's generator state in the checkpoint
    (key ``'rng_state'``) and restores it when the first iteration after a
    resume starts (not for ``load_from``, which starts a new run). A
    validation run does not change torch's generator (its data loader
    draws a seed from it), so a run that validates at the checkpoint's
    iteration resumes exactly too. With ``randomness.diff_rank_seed`` in a
    distributed run, each process has its own generator and only the first
    one's is saved: the generators are then not restored.
    """

    priority = 'LOWEST'

    def __init__(self) -> None:
        self._resumed_rng: Optional[tuple] = None
        self._val_rng: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add the generator state; replace every entry of ``checkpoint`` by
        its plain form."""
        checkpoint[RNG_KEY] = get_torch_rng_state()
        plain = to_plain(checkpoint)
        checkpoint.clear()
        checkpoint.update(plain)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore the objects :func:`to_plain` flattened; keep the generator
        state for :meth:`before_train_iter`."""
        restored = from_plain(checkpoint)
        checkpoint.clear()
        checkpoint.update(restored)
        iteration = checkpoint.get('meta', {}).get('iter')
        if RNG_KEY in checkpoint and iteration:
            self._resumed_rng = (iteration, checkpoint[RNG_KEY])

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """At the first iteration after a resume, restore torch's generator
        as it was when the checkpoint was saved."""
        if self._resumed_rng is None:
            return
        iteration, state = self._resumed_rng
        self._resumed_rng = None
        diff_rank_seed = runner.cfg.get('randomness', {}).get(
            'diff_rank_seed', False)
        if runner.iter != iteration or (get_world_size() > 1
                                        and diff_rank_seed):
            return
        set_torch_rng_state(state)
        print_log(f'Restored torch\'s random generator as it was at '
                  f'iteration {iteration}.', logger='current')

    def before_val(self, runner) -> None:
        """Note torch's generator state before validating."""
        self._val_rng = get_torch_rng_state()

    def after_val(self, runner) -> None:
        """Put torch's generator back as it was before validating."""
        if self._val_rng is not None:
            set_torch_rng_state(self._val_rng)
            self._val_rng = None
