# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""A seconds-long MMEngine run for the interruption tests: a 2-layer linear
model regressing a fixed target, iteration-based, checkpoint hooks given.

Run as a script it is the process the tests kill while it saves::

    python toy_runner.py WORK_DIR {zegot|stock} [best]

trains 4 iterations with a checkpoint every 2 (``max_keep_ckpts=1``) and
kills itself (SIGKILL) while writing ``iter_4.pth``: with ``zegot``
(:class:`ZegOTCheckpointHook`) after the bytes reached the temporary file,
before the rename; with ``stock`` (MMEngine's ``CheckpointHook``) half-way
through writing the file in place. With ``best`` it validates every 2
iterations (``save_best='score'``, a better score each time) and is killed
while writing the second best checkpoint, ``best_score_iter_4.pth``.
"""
import os
import signal
import sys
import uuid

import torch
from mmengine.evaluator import BaseMetric
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from mmseg_zegot.engine import ZegOTCheckpointHook, ZegOTPlainCheckpointHook

KILLED_CHECKPOINT = 'iter_4.pth'
KILLED_BEST = 'best_score_iter_4.pth'


class LinearModel(BaseModel):
    """Two linear layers and a dropout (so the run draws random numbers)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.5),
                                    nn.Linear(4, 1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        outputs = self.layers(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=((outputs[:, 0] - torch.stack(data_samples))**2)
                        .mean())
        return outputs


class LineDataset(Dataset):
    """12 points of y = x0 - 2 x1."""

    metainfo = dict()

    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> dict:
        x = torch.tensor([index / 12, 1 - index / 12])
        return dict(inputs=x, data_samples=x[0] - 2 * x[1])


class ScoreMetric(BaseMetric):
    """Reports ``score`` = the next of the given values at each validation.
    """

    def __init__(self, scores) -> None:
        super().__init__()
        self.scores = list(scores)

    def process(self, data_batch, data_samples) -> None:
        self.results.append(0)

    def compute_metrics(self, results) -> dict:
        return dict(score=self.scores.pop(0))


def build_runner(work_dir, checkpoint_hook, max_iters: int,
                 val_scores=None, **kwargs) -> Runner:
    """A Runner over :class:`LineDataset` with our plain-checkpoint hook;
    with ``val_scores``, validated every 2 iterations by
    :class:`ScoreMetric`; ``kwargs`` go to the Runner (``resume``,
    ``load_from``)."""
    if val_scores is not None:
        kwargs.update(
            val_dataloader=dict(dataset=LineDataset(),
                                sampler=dict(type='DefaultSampler',
                                             shuffle=False),
                                batch_size=4, num_workers=0),
            val_cfg=dict(), val_evaluator=[ScoreMetric(val_scores)])
    return Runner(
        model=LinearModel(),
        work_dir=str(work_dir),
        experiment_name=f'toy-{uuid.uuid4().hex}',
        train_dataloader=dict(
            dataset=LineDataset(),
            sampler=dict(type='InfiniteSampler', shuffle=True),
            batch_size=3,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        default_hooks=dict(checkpoint=checkpoint_hook),
        custom_hooks=[ZegOTPlainCheckpointHook()],
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0),
        **kwargs)


def kill_on_fsync_of(name: str) -> None:
    """SIGKILL this process when it flushes a file whose path holds
    ``name`` (its bytes are written, the rename has not happened)."""
    fsync = os.fsync

    def fsync_then_die(descriptor):
        fsync(descriptor)
        if name in os.readlink(f'/proc/self/fd/{descriptor}'):
            os.kill(os.getpid(), signal.SIGKILL)

    os.fsync = fsync_then_die


def kill_half_way_through(name: str) -> None:
    """SIGKILL this process half-way through ``LocalBackend.put`` of a file
    whose path holds ``name``."""
    put = LocalBackend.put

    def put_half_then_die(self, obj, filepath):
        if name not in str(filepath):
            return put(self, obj, filepath)
        with open(filepath, 'wb') as file:
            file.write(obj[:len(obj) // 2])
            file.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    LocalBackend.put = put_half_then_die


def main() -> None:
    work_dir, kind, *best = sys.argv[1:]
    killed = KILLED_BEST if best else KILLED_CHECKPOINT
    options = dict(interval=2, by_epoch=False, max_keep_ckpts=1)
    if best:
        options.update(save_best='score', rule='greater')
    if kind == 'zegot':
        hook = ZegOTCheckpointHook(**options)
        kill_on_fsync_of(killed)
    else:
        hook = CheckpointHook(**options)
        kill_half_way_through(killed)
    build_runner(work_dir, hook, max_iters=4,
                 val_scores=[1, 2] if best else None).train()


if __name__ == '__main__':
    main()
