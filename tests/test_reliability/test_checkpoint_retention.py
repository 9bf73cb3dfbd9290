# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The inductive-to-transductive hand-off on the real engine:
``ZegOTCheckpointHook(keep_iters=...)`` keeps the checkpoint a later run
loads whatever ``max_keep_ckpts`` deletes, and ``ZegOTLoadFromCheckHook``
stops a run whose ``load_from`` is missing before anything is trained."""
import pytest
import torch
from toy_runner import build_runner

from mmseg_zegot.engine.hooks import (
    ZegOTCheckpointHook,
    ZegOTLoadFromCheckHook,
)


def checkpoints(work_dir):
    return sorted(path.name for path in work_dir.glob('iter_*.pth'))


@pytest.mark.parametrize('keep_iters,kept', [
    ((), ['iter_8.pth']),
    # 4 is on the interval, 3 is not: both saved, neither counted.
    ((3, 4), ['iter_3.pth', 'iter_4.pth', 'iter_8.pth']),
])
def test_keep_iters_survive_max_keep_ckpts(tmp_path, keep_iters, kept):
    hook = ZegOTCheckpointHook(interval=2, by_epoch=False, max_keep_ckpts=1,
                               keep_iters=keep_iters)
    build_runner(tmp_path, hook, max_iters=8).train()
    assert checkpoints(tmp_path) == kept
    for name in kept:
        saved = torch.load(tmp_path / name, weights_only=True)
        assert saved['meta']['iter'] == int(name[5:-4])
    assert (tmp_path / 'last_checkpoint').read_text() == str(
        tmp_path / 'iter_8.pth')


def test_keep_iters_survive_a_resume(tmp_path):
    """The kept checkpoint is not in the rotation that a resumed run
    restores (``keep_ckpt_ids``), so the resumed run does not delete it."""
    options = dict(interval=2, by_epoch=False, max_keep_ckpts=1,
                   keep_iters=(2,))
    build_runner(tmp_path, ZegOTCheckpointHook(**options), max_iters=4).train()
    assert checkpoints(tmp_path) == ['iter_2.pth', 'iter_4.pth']
    build_runner(tmp_path, ZegOTCheckpointHook(**options), max_iters=8,
                 resume=True).train()
    assert checkpoints(tmp_path) == ['iter_2.pth', 'iter_8.pth']


@pytest.mark.parametrize('keep_iters,match', [
    ((0,), r'keep_iters` must be iteration numbers >= 1, got \(0,\)'),
    ((True,), r'keep_iters` must be iteration numbers >= 1'),
    ((2.5,), r'keep_iters` must be iteration numbers >= 1'),
])
def test_keep_iters_validation(keep_iters, match):
    with pytest.raises(ValueError, match=match):
        ZegOTCheckpointHook(interval=2, by_epoch=False, keep_iters=keep_iters)
    with pytest.raises(ValueError, match=r'set `by_epoch=False`'):
        ZegOTCheckpointHook(interval=2, by_epoch=True, keep_iters=(2,))


def test_missing_load_from_stops_at_start_up(tmp_path):
    missing = tmp_path / 'inductive' / 'iter_10000.pth'
    # The hook reads `load_from` from the config, as Runner.from_cfg keeps it.
    runner = build_runner(
        tmp_path / 'work',
        ZegOTCheckpointHook(interval=2, by_epoch=False), max_iters=2,
        load_from=str(missing), cfg=dict(load_from=str(missing)))
    runner.register_hook(ZegOTLoadFromCheckHook(
        source_config='configs/zegot/zegot_vitb16_voc.py', source_iter=10000))
    with pytest.raises(FileNotFoundError) as error:
        runner.train()
    assert str(error.value) == (
        f"`load_from`='{missing}' does not exist. It is the checkpoint that "
        '`python tools/train.py configs/zegot/zegot_vitb16_voc.py` saves at '
        'iteration 10000 (and keeps): run that first, or point `load_from` '
        'at your copy with `--cfg-options load_from=PATH`.')
    assert runner.iter == 0 and checkpoints(tmp_path / 'work') == []


def test_existing_load_from_is_loaded(tmp_path):
    build_runner(tmp_path / 'first', ZegOTCheckpointHook(
        interval=2, by_epoch=False), max_iters=2).train()
    source = tmp_path / 'first' / 'iter_2.pth'
    runner = build_runner(
        tmp_path / 'second', ZegOTCheckpointHook(interval=2, by_epoch=False),
        max_iters=2, load_from=str(source), cfg=dict(load_from=str(source)))
    runner.register_hook(ZegOTLoadFromCheckHook(
        source_config='first.py', source_iter=2))
    runner.train()
    assert checkpoints(tmp_path / 'second') == ['iter_2.pth']
