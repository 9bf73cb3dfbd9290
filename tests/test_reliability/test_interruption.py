# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Nothing is lost when a run is interrupted.

- Checkpoints and the ``last_checkpoint`` pointer are written atomically
  (:mod:`mmseg_zegot.utils.atomic_io`, :class:`ZegOTCheckpointHook`):
  a failure or a SIGKILL while saving leaves the previous checkpoint and
  the pointer valid; MMEngine's own hook, in the same situation with
  ``max_keep_ckpts=1``, leaves nothing to resume from.
- A ZegOT run killed (SIGKILL) after its half-way checkpoint, or stopped
  by SIGTERM (which saves a checkpoint first), resumes with
  ``tools/train.py --resume`` and ends with exactly the weights of the
  uninterrupted run (same seed, CPU, MKL_CBWR=COMPATIBLE; the reference
  run validates at the half-way checkpoint, the resumed ones do not).
"""
import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import make_voc_dataset
from mmengine.hooks import CheckpointHook
from reliability_runs import start_train, tiny_options, train, write_tiny_clip
from toy_runner import KILLED_BEST, KILLED_CHECKPOINT, build_runner

from mmseg_zegot.engine import ZegOTCheckpointHook
from mmseg_zegot.utils import atomic_io, read_checkpoint, save_published
from mmseg_zegot.utils.atomic_io import atomic_torch_save, atomic_write

HERE = Path(__file__).resolve().parent
#: Iterations of the reference run; the interrupted runs save at HALF.
TOTAL, HALF = 16, 8


def temp_files(folder):
    return sorted(p.name for p in Path(folder).iterdir()
                  if atomic_io.TEMP_FILE_PATTERN.match(p.name))


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / 'iter_2.pth'
    atomic_write(target, b'complete old checkpoint')

    def disk_full(descriptor):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(atomic_io.os, 'fsync', disk_full)
    with pytest.raises(OSError, match='No space left'):
        atomic_write(target, b'new checkpoint that never reaches the disk')
    assert target.read_bytes() == b'complete old checkpoint'
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize('name, save', [
    ('plain.pth', atomic_torch_save),
    ('published.pth', save_published),
    ('published.safetensors', save_published),
])
def test_checkpoint_files_are_replaced_whole(tmp_path, monkeypatch, name,
                                             save):
    """What tools/convert_checkpoint.py, tools/init_checkpoint.py and
    tools/publish_checkpoint.py write: the new file loads back, and a
    failure while writing one (disk full) leaves the previous file as it
    was (converting or publishing in place cannot destroy the source)."""
    target = tmp_path / name
    old = dict(state_dict={'w': torch.zeros(2)}, meta=dict(iter=1))
    new = dict(state_dict={'w': torch.ones(2)}, meta=dict(iter=2))
    save(old, str(target))
    assert torch.equal(read_checkpoint(str(target))['state_dict']['w'],
                       old['state_dict']['w'])
    before = target.read_bytes()

    def disk_full(descriptor):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(atomic_io.os, 'fsync', disk_full)
    with pytest.raises(OSError, match='No space left'):
        save(new, str(target))
    assert target.read_bytes() == before
    assert temp_files(tmp_path) == []
    monkeypatch.undo()
    save(new, str(target))
    assert torch.equal(read_checkpoint(str(target))['state_dict']['w'],
                       new['state_dict']['w'])


def test_atomic_write_keeps_permissions_of_a_plain_write(tmp_path):
    atomic_write(tmp_path / 'a', b'x')
    (tmp_path / 'b').write_bytes(b'x')
    assert (tmp_path / 'a').stat().st_mode == (tmp_path / 'b').stat().st_mode


def kill_while_saving(work_dir, kind, *best):
    """Run toy_runner.py: checkpoints at 2 and 4, killed while writing 4
    (with ``'best'``, while writing the best checkpoint of 4)."""
    result = subprocess.run(
        [sys.executable, str(HERE / 'toy_runner.py'), str(work_dir), kind,
         *best],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    return Path(work_dir)


def test_kill_while_saving_keeps_previous_checkpoint(tmp_path):
    work = kill_while_saving(tmp_path / 'ours', 'zegot')
    # The pointer still names iter_2, which is complete; iter_4 never
    # appeared (its bytes were in a temporary file when the process died).
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    checkpoint = torch.load(work / 'iter_2.pth', weights_only=True)
    assert checkpoint['meta']['iter'] == 2
    assert not (work / KILLED_CHECKPOINT).exists()
    assert len(temp_files(work)) == 1
    # --resume continues from iter_2, cleans the leftover, reaches 4.
    runner = build_runner(work, ZegOTCheckpointHook(
        interval=2, by_epoch=False, max_keep_ckpts=1), max_iters=4,
        resume=True)
    runner.train()
    assert runner.iter == 4 and temp_files(work) == []
    resumed = torch.load(work / KILLED_CHECKPOINT, weights_only=True)
    assert resumed['meta']['iter'] == 4
    # max_keep_ckpts=1: iter_2 is deleted only once iter_4 is complete.
    assert not (work / 'iter_2.pth').exists()
    assert (work / 'last_checkpoint').read_text() == str(
        work / KILLED_CHECKPOINT)


def test_mmengine_hook_loses_the_only_checkpoint(tmp_path):
    """Why ZegOTCheckpointHook exists: MMEngine's hook deletes the kept
    checkpoint before writing the next one, in place."""
    work = kill_while_saving(tmp_path / 'stock', 'stock')
    assert not (work / 'iter_2.pth').exists()
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    with pytest.raises(Exception):  # noqa: B017  (truncated zip archive)
        torch.load(work / KILLED_CHECKPOINT, weights_only=True)


@pytest.mark.parametrize('kind', ['zegot', 'stock'])
def test_kill_while_saving_a_new_best(tmp_path, kind):
    """Ours deletes the previous best checkpoint after the new one is on
    disk; MMEngine's deletes it first, so the kill leaves no best one."""
    work = kill_while_saving(tmp_path / kind, kind, 'best')
    assert (work / 'best_score_iter_2.pth').exists() == (kind == 'zegot')
    if kind == 'zegot':
        assert torch.load(work / 'best_score_iter_2.pth',
                          weights_only=True)['meta']['iter'] == 2
        assert not (work / KILLED_BEST).exists()


def test_best_checkpoint_replaced_only_when_better(tmp_path):
    """Scores 1, 0, 2 at iterations 2, 4, 6: one best file at a time, the
    one of iteration 2 kept through the worse score, deleted at 6."""
    runner = build_runner(
        tmp_path, ZegOTCheckpointHook(interval=2, by_epoch=False,
                                      save_best='score', rule='greater'),
        max_iters=6, val_scores=[1, 0, 2])
    runner.train()
    best = sorted(p.name for p in tmp_path.glob('best_*'))
    assert best == ['best_score_iter_6.pth']
    assert runner.message_hub.get_info('best_ckpt') == str(
        tmp_path / 'best_score_iter_6.pth')
    assert runner.message_hub.get_info('best_score') == 2


def test_mmengine_private_methods_we_rely_on_are_unchanged():
    """ZegOTCheckpointHook overrides ``_save_checkpoint_with_step`` and
    calls ``_save_checkpoint`` (MMEngine has no public hook point for the
    order of save, pointer and deletion); an MMEngine that renames them
    must fail here, not silently save the MMEngine way."""
    def params(method):
        return list(inspect.signature(method).parameters)

    assert params(CheckpointHook._save_checkpoint_with_step) == [
        'self', 'runner', 'step', 'meta']
    assert params(ZegOTCheckpointHook._save_checkpoint_with_step) == [
        'self', 'runner', 'step', 'meta']
    assert params(CheckpointHook._save_checkpoint) == ['self', 'runner']
    assert '_save_checkpoint_with_step' in inspect.getsource(
        CheckpointHook._save_checkpoint)
    assert 'self._save_best_checkpoint(runner, metrics)' in inspect.getsource(
        CheckpointHook.after_val_epoch)


def test_second_sigterm_ends_the_process_at_once(monkeypatch):
    hook = ZegOTCheckpointHook(interval=2, by_epoch=False)
    previous = signal.signal(signal.SIGTERM, hook._on_signal)
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # noted, nothing else
        assert hook._signal == signal.SIGTERM
        kills = []
        monkeypatch.setattr(os, 'kill', lambda pid, signum: kills.append(
            (pid, signum)))
        hook._on_signal(signal.SIGTERM, None)
        assert kills == [(os.getpid(), signal.SIGTERM)]
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Data, tiny CLIP, and the uninterrupted reference run."""
    root = tmp_path_factory.mktemp('interrupt')
    data_root = make_voc_dataset(root / 'voc', num_train=4, num_val=2)
    clip = write_tiny_clip(root)

    def options(max_iters):
        # One checkpoint at HALF and one at the end (save_last); validation
        # at HALF; the schedule ends at TOTAL whatever max_iters is.
        return tiny_options(data_root, clip, TOTAL) + [
            f'train_cfg.max_iters={max_iters}',
            f'train_cfg.val_interval={HALF}',
            'default_hooks.checkpoint.type=ZegOTCheckpointHook',
            f'default_hooks.checkpoint.save_begin={HALF}',
            'default_hooks.checkpoint.interval=100000']

    reference = root / 'reference'
    _, log = train(reference, options(TOTAL))
    assert 'Iter(val)' in log  # it validated at HALF, then trained on
    state = torch.load(reference / f'iter_{TOTAL}.pth',
                       weights_only=True)['state_dict']
    return root, options, state


def wait_for_pointer(work_dir, name, process, timeout=300):
    """Poll until ``last_checkpoint`` names ``name`` (the checkpoint is
    complete when the pointer names it)."""
    pointer = Path(work_dir) / 'last_checkpoint'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pointer.exists() and pointer.read_text().endswith(name):
            return
        assert process.poll() is None, 'the run ended before its checkpoint'
        time.sleep(0.01)
    raise TimeoutError(f'{pointer} never named {name}')


def assert_same_weights(work_dir, reference):
    state = torch.load(Path(work_dir) / f'iter_{TOTAL}.pth',
                       weights_only=True)['state_dict']
    assert state.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(state[key], value), key


@pytest.mark.slow
@pytest.mark.parametrize('signum', [signal.SIGKILL, signal.SIGTERM],
                         ids=['SIGKILL', 'SIGTERM'])
def test_killed_run_resumes_to_identical_weights(setup, signum):
    root, options, reference = setup
    work = root / f'killed_{signal.Signals(signum).name}'
    # The interrupted run is set to train far longer, so the signal always
    # lands in the middle of training, after the checkpoint at HALF.
    process = start_train(work, options(100000))
    wait_for_pointer(work, f'iter_{HALF}.pth', process)
    process.send_signal(signum)
    code = process.wait(timeout=300)
    log = Path(f'{work}.log').read_text()
    pointer = Path((work / 'last_checkpoint').read_text())
    if signum == signal.SIGKILL:
        assert code == -signal.SIGKILL
        assert pointer.name == f'iter_{HALF}.pth'
    else:
        # SIGTERM: the current iteration ends, a checkpoint is saved, exit
        # code 128 + 15.
        assert code == 143, log[-3000:]
        assert 'Received SIGTERM' in log
        stopped = torch.load(pointer, weights_only=True)['meta']['iter']
        assert pointer.name == f'iter_{stopped}.pth'
        assert HALF <= stopped < TOTAL
    _, log = train(work, options(TOTAL), '--resume')
    assert f'Auto resumed from the latest checkpoint {pointer}' in log
    assert 'Restored torch\'s random generator' in log
    assert_same_weights(work, reference)
