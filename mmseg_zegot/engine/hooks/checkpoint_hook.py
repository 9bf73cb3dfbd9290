# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""A ``CheckpointHook`` whose checkpoints survive the run being killed.

Where MMEngine 0.10.7 offers a public hook point, it is used: the atomic
writes go through a file backend (``backend_args``,
:mod:`mmseg_zegot.engine.atomic_backend`), and the hook's own steps run in
the public ``before_train``, ``after_train_iter``, ``after_val_epoch`` and
``after_train``. One step has no public hook point: the order in which
``CheckpointHook`` deletes the outdated checkpoint (before saving the new
one) and writes ``last_checkpoint`` (with a plain ``open``) sits inside its
private ``_save_checkpoint_with_step``, and ``Hook`` has no
``after_save_checkpoint`` to act after the save. That method is therefore
overridden here, and only here, keeping MMEngine's bookkeeping
(``keep_ckpt_ids``, ``last_ckpt``); :meth:`ZegOTCheckpointHook._save_once`
calls MMEngine's private ``_save_checkpoint``, which computes the step and
metadata and calls it. ``tests/test_reliability/test_interruption.py``
checks that both private methods still exist with the signatures used
here, so an MMEngine upgrade that changes them fails a test instead of
silently saving the MMEngine way.
"""
import os
import os.path as osp
import signal
import threading
from typing import Dict, Optional, Sequence

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from mmseg_zegot.utils.atomic_io import atomic_write, remove_stale_temp_files

from ..atomic_backend import ATOMIC_BACKEND

#: The pointer file MMEngine's ``--resume`` reads (``find_latest_checkpoint``).
POINTER_FILE = 'last_checkpoint'


@HOOKS.register_module()
class ZegOTCheckpointHook(CheckpointHook):
    """MMEngine's ``CheckpointHook``, safe against interruption.

    Differences from ``CheckpointHook`` (same arguments, same files):

    - Checkpoints in a local folder are written atomically (temporary file,
      ``fsync``, rename; :mod:`mmseg_zegot.utils.atomic_io`): a run
      killed while saving leaves the previous checkpoint, never a truncated
      one. Give ``backend_args`` to save elsewhere (then as that backend
      writes).
    - The ``last_checkpoint`` pointer is written atomically too, after the
      checkpoint it names is complete.
    - With ``max_keep_ckpts``, outdated checkpoints are deleted only after
      the new checkpoint and the pointer are on disk (MMEngine deletes
      first, so a kill during the save of the only kept checkpoint leaves
      nothing to resume from).
    - With ``save_best``, the previous best checkpoint is deleted after the
      new one is on disk (MMEngine deletes it first).
    - Temporary files of saves killed in an earlier run are deleted when
      training starts.
    - ``keep_iters``: checkpoints saved at these iterations (also off the
      ``interval``) and never deleted, on top of the ``max_keep_ckpts``
      most recent ones. The inductive configs keep their half-way
      checkpoint this way, which the transductive configs load.
    - ``save_on_sigterm``: a SIGTERM (what schedulers send before they stop
      a job) lets the current iteration (and a validation it triggers)
      finish, saves a checkpoint and ends the process with exit code 143;
      ``tools/train.py CONFIG --resume`` continues from it. A second SIGTERM
      ends the process at once. In a distributed run all processes stop
      after the same iteration. Iteration-based training only (an
      epoch-based loop cannot resume in the middle of an epoch).

    Args:
        save_on_sigterm (bool): Install the SIGTERM handler while training.
            Defaults to True.
        keep_iters (Sequence[int]): Iterations whose checkpoints are saved
            and kept whatever ``max_keep_ckpts`` says. Iteration-based
            training only. Defaults to ().
        **kwargs: As for ``CheckpointHook``.
    """

    def __init__(self,
                 save_on_sigterm: bool = True,
                 keep_iters: Sequence[int] = (),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 1
               for i in keep_iters):
            raise ValueError(
                '`default_hooks.checkpoint.keep_iters` must be iteration '
                f'numbers >= 1, got {keep_iters!r}.')
        if keep_iters and self.by_epoch:
            raise ValueError(
                '`default_hooks.checkpoint.keep_iters` needs iteration-based '
                'checkpoints: set `by_epoch=False` or drop `keep_iters`.')
        self.keep_iters = frozenset(keep_iters)
        self.save_on_sigterm = save_on_sigterm
        self._signal: Optional[int] = None
        self._previous_handler = None

    def before_train(self, runner) -> None:
        """Pick the atomic backend for a local folder, clean up after killed
        saves and install the SIGTERM handler."""
        out_dir = self.out_dir if self.out_dir is not None else runner.work_dir
        local = isinstance(get_file_backend(out_dir), LocalBackend)
        if local and self.backend_args is None and self.file_client_args is None:
            self.backend_args = dict(backend=ATOMIC_BACKEND)
        super().before_train(runner)
        if local and is_main_process():
            for path in remove_stale_temp_files(self.out_dir):
                print_log(f'Removed {path}, left by a save that was killed.',
                          logger='current')
        if (self.save_on_sigterm and not self.by_epoch
                and threading.current_thread() is threading.main_thread()):
            self._previous_handler = signal.signal(signal.SIGTERM,
                                                   self._on_signal)

    def _on_signal(self, signum: int, frame) -> None:
        """Note the first SIGTERM (:meth:`after_train_iter` acts on it); a
        second one ends the process at once, as if there were no handler."""
        if self._signal is not None:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self._signal = signum

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Save as ``CheckpointHook`` does, and at the ``keep_iters``; after a
        SIGTERM, save (unless this iteration was just saved) and end the
        process. A SIGTERM during the last iteration lets training end
        normally."""
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        step = runner.iter + 1
        if step in self.keep_iters:
            self._save_once(runner, step)
        if not self._stop_requested() or self.is_last_train_iter(runner):
            return
        self._save_once(runner, step)
        exit_code = 128 + signal.SIGTERM
        runner.logger.warning(
            f'Received SIGTERM: stopped after iteration {step} and saved '
            f'{self.last_ckpt}. Continue with `tools/train.py CONFIG '
            f'--resume --work-dir {runner.work_dir}`. Exiting with code '
            f'{exit_code}.')
        raise SystemExit(exit_code)

    def _save_once(self, runner, step: int) -> None:
        """Save the checkpoint of iteration ``step`` unless it was just
        saved."""
        path = self.file_backend.join_path(self.out_dir,
                                           self.filename_tmpl.format(step))
        if self.last_ckpt != path:
            runner.logger.info(f'Saving checkpoint at {step} iterations')
            self._save_checkpoint(runner)

    def _stop_requested(self) -> bool:
        """Whether any process received SIGTERM (all processes stop at the
        same iteration)."""
        if not self.save_on_sigterm or self.by_epoch:
            return False
        stop = self._signal is not None
        if get_world_size() > 1:
            flag = torch.tensor([int(stop)])
            all_reduce(flag, op='max')
            stop = bool(flag.item())
        return stop

    def after_train(self, runner) -> None:
        """Publish as ``CheckpointHook`` does; restore the SIGTERM handler."""
        super().after_train(runner)
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)
            self._previous_handler = None

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        """Save, point ``last_checkpoint`` at it, then delete outdated ones.

        Same bookkeeping as ``CheckpointHook._save_checkpoint_with_step``
        (``keep_ckpt_ids`` and ``last_ckpt`` in the message hub), in an order
        that never leaves the work folder without a complete checkpoint. The
        checkpoints of ``keep_iters`` stay out of ``keep_ckpt_ids``, so they
        are never deleted.
        """
        outdated = None
        if self.max_keep_ckpts > 0 and step not in self.keep_iters and not (
                self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write(osp.join(runner.work_dir, POINTER_FILE),
                     str(self.last_ckpt).encode())
        if outdated is not None:
            self._remove(
                self.file_backend.join_path(
                    self.out_dir, self.filename_tmpl.format(outdated)))

    def _remove(self, path: str) -> bool:
        """Delete a checkpoint file (or DeepSpeed folder); whether one was
        there."""
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # DeepSpeed checkpoints
            self.file_backend.rmtree(path)
        else:
            return False
        return True

    def _best_paths(self) -> Dict[Optional[str], Optional[str]]:
        """The current best checkpoint of each key indicator (key ``None``
        for a single indicator)."""
        if len(self.key_indicators) == 1:
            return {None: self.best_ckpt_path}
        return dict(self.best_ckpt_path_dict)

    def _set_best_paths(self, paths: Dict[Optional[str],
                                          Optional[str]]) -> None:
        if len(self.key_indicators) == 1:
            self.best_ckpt_path = paths[None]
        else:
            self.best_ckpt_path_dict.update(paths)

    def after_val_epoch(self, runner, metrics) -> None:
        """Save a new best checkpoint as ``CheckpointHook`` does, then
        delete the one it replaces (MMEngine deletes first, so a run killed
        while the new best is written keeps no best checkpoint at all).

        MMEngine deletes the previous best checkpoint it knows of; with none
        known it deletes nothing, so the paths are hidden from it during the
        save and the replaced ones deleted here afterwards.
        """
        if not self.save_best:
            super().after_val_epoch(runner, metrics)
            return
        previous = self._best_paths()
        self._set_best_paths(dict.fromkeys(previous))  # MMEngine deletes none
        super().after_val_epoch(runner, metrics)
        current, replaced = self._best_paths(), []
        for key, path in previous.items():
            if current[key] is None:  # not improved: still the best
                current[key] = path
            elif path not in (None, current[key]):
                replaced.append(path)
        self._set_best_paths(current)
        if not is_main_process():
            return
        for path in replaced:
            if self._remove(path):
                runner.logger.info(
                    f'The previous best checkpoint {path} is removed')
