# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Distributed training and testing on the real engine: tools/dist_train.sh
and tools/dist_test.sh with two CPU processes (torchrun, gloo), against the
same runs in one process.

The runs train the toy ZegOT config (the committed toy CLIP, so the metrics
are not trivially zero) for 3 iterations on a generated toy world with the
same global batch: 2 ranks × 2 images vs 1 process × 4 images. To make the
two comparable, the training pipeline is deterministic (no flip), the
sampler does not shuffle (rank r takes images r, r + 2, ... of the order one
process takes in fours), the decoder's dropout is 0 and the schedule is a
constant learning rate. ZegOT has no BatchNorm, DDP averages the gradients
and the loss normaliser (present classes) is averaged over ranks, so the
distributed gradient equals the single-process one up to float summation
order. A probe hook (rank_state_hook.py) saves every rank's trainable
parameters after every iteration.
"""
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from conftest import REPO
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmseg_zegot.utils.dist import has_accelerator, setup_cpu_distributed
from projects.toy_world.toy_world import generate_world

HERE = Path(__file__).resolve().parent
ITERS = 3
LR = 1e-3  # the head and prompts' lr (1e-4 × lr_mult 10) of zegot_toy.py
KEYS = ('aAcc', 'mIoU', 'mAcc', 'mIoU.seen', 'mIoU.unseen', 'hIoU')

CONFIG = """
_base_ = ['{repo}/projects/toy_world/configs/zegot_toy.py']
custom_imports = dict(
    imports=['mmseg_zegot', 'projects.toy_world.toy_world', 'rank_state_hook'],
    allow_failed_imports=False)
custom_hooks = [dict(type='ZegOTPlainCheckpointHook'),
                dict(type='ZegOTStartupCheckHook'),
                dict(type='RankStateProbeHook')]
data_root = '{data}'
model = dict(decode_head=dict(decoder=dict(dropout=0.0)))
pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')]
train_dataloader = dict(batch_size=4, sampler=dict(shuffle=False),
                        dataset=dict(data_root=data_root, pipeline=pipeline))
val_dataloader = dict(batch_size=1, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
param_scheduler = []
train_cfg = dict(max_iters={iters}, val_interval={iters})
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval={iters}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def launch(*command) -> str:
    """Run a tool from the repository root as a user would, one OpenMP
    thread per process, with the probe hook importable."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')}
    env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONPATH=str(HERE),
               PYTHON=sys.executable, PORT=str(free_port()))
    result = subprocess.run([str(c) for c in command], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def last_metrics(work_dir: Path) -> dict:
    """The last line with metrics of the run's scalar log (training) or
    its metrics file (testing)."""
    rows = []
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        rows += [json.loads(line) for line in path.read_text().splitlines()]
    for path in sorted(work_dir.glob('*/*.json')):
        rows.append(json.loads(path.read_text()))
    return [row for row in rows if 'mIoU' in row][-1]


def rank_state(work_dir: Path, iteration: int, rank: int) -> dict:
    return torch.load(work_dir / 'rank_state' /
                      f'iter{iteration}_rank{rank}.pt', weights_only=True)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('distributed')
    generate_world(str(root / 'data'), seed=0, num_train=8, num_val=5)
    config = root / 'config.py'
    config.write_text(CONFIG.format(repo=REPO, data=root / 'data',
                                    iters=ITERS))
    logs = dict(
        single=launch(sys.executable, 'tools/train.py', config, '--work-dir',
                      root / 'single'),
        dist=launch('bash', 'tools/dist_train.sh', config, 2, '--work-dir',
                    root / 'dist', '--cfg-options',
                    'train_dataloader.batch_size=2'))
    checkpoint = root / 'single' / f'iter_{ITERS}.pth'
    logs['single_test'] = launch(sys.executable, 'tools/test.py', config,
                                 checkpoint, '--work-dir',
                                 root / 'single_test')
    logs['dist_test'] = launch('bash', 'tools/dist_test.sh', config,
                               checkpoint, 2, '--work-dir',
                               root / 'dist_test')
    return root, logs


@pytest.mark.slow
def test_prompts_stay_identical_across_ranks(runs):
    """After every iteration both ranks hold bit-identical trainable
    parameters, the prompt contexts among them, and rank 0's checkpoint is
    that state."""
    root, logs = runs
    assert 'Distributed training is not used' not in logs['dist']
    for iteration in range(1, ITERS + 1):
        rank0 = rank_state(root / 'dist', iteration, 0)
        rank1 = rank_state(root / 'dist', iteration, 1)
        assert 'text_encoder.contexts' in rank0
        assert rank0.keys() == rank1.keys()
        for key in rank0:
            assert torch.equal(rank0[key], rank1[key]), (iteration, key)
    saved = torch.load(root / 'dist' / f'iter_{ITERS}.pth',
                       weights_only=True)['state_dict']
    for key, value in rank_state(root / 'dist', ITERS, 1).items():
        assert torch.equal(saved[key], value), key


@pytest.mark.slow
def test_distributed_training_matches_one_process(runs):
    """2 ranks × 2 images and 1 process × 4 images give the same parameters
    after every iteration, to 1e-5: 1% of one AdamW step (lr 1e-3; Adam's
    step is about lr per element whatever the gradient's scale), while
    float summation order alone moves them by ~2e-7 here. The parameters
    do move by ~lr per step, so the comparison is not vacuous."""
    root, _ = runs
    for iteration in range(1, ITERS + 1):
        ours = rank_state(root / 'dist', iteration, 0)
        reference = rank_state(root / 'single', iteration, 0)
        assert ours.keys() == reference.keys()
        for key in reference:
            torch.testing.assert_close(ours[key], reference[key], rtol=0,
                                       atol=1e-2 * LR, msg=key)
    first = rank_state(root / 'single', 1, 0)['text_encoder.contexts']
    last = rank_state(root / 'single', ITERS, 0)['text_encoder.contexts']
    assert (last - first).abs().max() > 0.5 * LR


@pytest.mark.slow
def test_distributed_validation_matches_one_process(runs):
    """The end-of-training validation: each rank evaluates 3 of the 5
    images (the sampler pads 5 to 6), ZeroShotIoUMetric gathers them and
    drops the padding, and the metrics are those of one process. Parameters
    agree to ~1e-7, so a prediction could only differ at a pixel whose two
    best scores are that close; 0.1 points is far above such a flip."""
    root, logs = runs
    assert 'Iter(val) [3/3]' in logs['dist']
    assert 'Iter(val) [5/5]' in logs['single']
    ours, reference = last_metrics(root / 'dist'), last_metrics(
        root / 'single')
    assert reference['aAcc'] > 0
    for key in KEYS:
        assert ours[key] == pytest.approx(reference[key], abs=0.1), key


@pytest.mark.slow
def test_dist_test_gives_the_single_process_metrics(runs):
    """tools/dist_test.sh with 2 processes on the same checkpoint gives
    exactly the metrics of tools/test.py: every image is predicted the same
    way, whichever rank does it, and each counted once."""
    root, logs = runs
    assert 'Iter(test) [3/3]' in logs['dist_test']
    ours = last_metrics(root / 'dist_test')
    reference = last_metrics(root / 'single_test')
    assert reference['aAcc'] > 0
    for key in KEYS:
        assert ours[key] == reference[key], key


@pytest.mark.slow
@pytest.mark.skipif(not Path('/proc/self/task').is_dir(),
                    reason='reads thread names from /proc')
def test_ranks_exit_without_gloo_threads(runs):
    """Every rank of dist_train.sh and dist_test.sh has freed its process
    group, so no gloo thread is running, when the interpreter starts to
    tear down. A rank exiting with them alive could abort
    ("terminate called without an active exception") and fail the run
    after the work was done: the runner's DDP wrapper kept the group
    alive through reference cycles past destroy_process_group."""
    root, _ = runs
    for run in ('dist', 'dist_test'):
        for rank in (0, 1):
            path = root / run / 'rank_state' / f'exit_threads_rank{rank}.json'
            names = json.loads(path.read_text())
            assert not [n for n in names if 'gloo' in n], (run, rank, names)


def test_every_state_dict_entry_is_a_tensor(tiny_clip_cfg):
    """MMEngine broadcasts every state-dict entry from rank 0 after
    init_weights() in distributed training, which only works for tensors:
    the towers' QuickGELU records are 0-dim bool tensors (they were dicts,
    and broadcasting them failed). Records saved as dicts still load."""
    init_default_scope('mmseg')
    clip = dict(model_name='tiny', model_cfg=tiny_clip_cfg, quick_gelu=False)
    model = MODELS.build(dict(
        type='ZegOTSegmentor', class_names=('cat', 'dog'),
        image_encoder=dict(type='ZegOTCLIPVisionTransformer',
                           out_indices=(0, ), **clip),
        text_encoder=dict(type='ZegOTPromptTextEncoder', prompt_length=2,
                          **clip),
        decode_head=dict(type='ZegOTHead', num_classes=None,
                         in_channels=None, channels=None, in_index=None)))
    state = model.state_dict()
    assert all(isinstance(value, torch.Tensor) for value in state.values())
    assert state['image_encoder._extra_state'].item() is False
    text = model.text_encoder.state_dict()
    text['_extra_state'] = {'quick_gelu': False}
    model.text_encoder.load_state_dict(text)
    text['_extra_state'] = {'quick_gelu': True}
    with pytest.raises(ValueError, match=r'model\.text_encoder\.quick_gelu'):
        model.text_encoder.load_state_dict(text)


@pytest.mark.skipif(has_accelerator(), reason='needs a CPU-only machine')
def test_cpu_distributed_setup(monkeypatch, log_messages):
    """What tools/train.py and tools/test.py do before the Runner: nothing
    without a launcher; a clear error for Slurm on CPU; for torchrun, a
    gloo process group (nccl, mmseg's default, is replaced with a warning)
    and DDP without device ids."""
    cfg = Config(dict(launcher='none'))
    assert not setup_cpu_distributed(cfg) and 'model_wrapper_cfg' not in cfg
    with pytest.raises(ValueError, match=r'--launcher slurm needs GPUs.*'
                       r'tools/dist_train\.sh'):
        setup_cpu_distributed(Config(dict(launcher='slurm')))

    for key, value in dict(MASTER_ADDR='127.0.0.1', MASTER_PORT=free_port(),
                           RANK=0, WORLD_SIZE=1, LOCAL_RANK=0).items():
        monkeypatch.setenv(key, str(value))
    cfg = Config(dict(launcher='pytorch', find_unused_parameters=True,
                      env_cfg=dict(dist_cfg=dict(backend='nccl',
                                                 timeout=60))))
    try:
        assert setup_cpu_distributed(cfg)
        assert dist.get_backend() == 'gloo' and dist.get_world_size() == 1
    finally:
        dist.destroy_process_group()
    assert any("this CPU run uses 'gloo'" in m for m in log_messages)
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=True, device_ids=None)


def fake_executable(folder: Path, name: str) -> Path:
    """An executable that writes its arguments, one per line, to
    ``<folder>/<name>.args``."""
    path = folder / name
    path.write_text('#!/usr/bin/env bash\n'
                    f'printf "%s\\n" "$@" > "{folder}/{name}.args"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def run_script(script, *args, env) -> None:
    subprocess.run(['bash', str(REPO / 'tools' / script), *map(str, args)],
                   cwd=REPO, env={**os.environ, **env}, check=True,
                   capture_output=True, timeout=60)


def test_multi_node_launch_commands(tmp_path):
    """The documented multi-node settings reach torchrun and srun as
    mmseg's scripts pass them (fake python / srun record the command)."""
    python = fake_executable(tmp_path, 'python')
    run_script('dist_train.sh', 'cfg.py', 4, '--resume',
               env=dict(PYTHON=str(python), NNODES='2', NODE_RANK='1',
                        MASTER_ADDR='10.0.0.1', PORT='29600'))
    assert (tmp_path / 'python.args').read_text().splitlines() == [
        '-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1',
        '--master_addr=10.0.0.1', '--nproc_per_node=4',
        '--master_port=29600', str(REPO / 'tools' / 'train.py'), 'cfg.py',
        '--launcher', 'pytorch', '--resume']
    run_script('dist_test.sh', 'cfg.py', 'ckpt.pth', 2,
               env=dict(PYTHON=str(python)))
    args = (tmp_path / 'python.args').read_text().splitlines()
    assert args[-6:] == ['--master_port=29500',
                         str(REPO / 'tools' / 'test.py'), 'cfg.py',
                         'ckpt.pth', '--launcher', 'pytorch']

    fake_executable(tmp_path, 'srun')
    path = f"{tmp_path}{os.pathsep}{os.environ['PATH']}"
    run_script('slurm_train.sh', 'gpu', 'zegot', 'cfg.py', '--resume',
               env=dict(PATH=path, GPUS='8', GPUS_PER_NODE='4',
                        PYTHON='python3'))
    assert (tmp_path / 'srun.args').read_text().splitlines() == [
        '-p', 'gpu', '--job-name=zegot', '--gres=gpu:4', '--ntasks=8',
        '--ntasks-per-node=4', '--cpus-per-task=5', '--kill-on-bad-exit=1',
        'python3', '-u', str(REPO / 'tools' / 'train.py'), 'cfg.py',
        '--launcher', 'slurm', '--resume']
    run_script('slurm_test.sh', 'gpu', 'zegot', 'cfg.py', 'ckpt.pth',
               env=dict(PATH=path, SRUN_ARGS='--time=1:00:00 --mem=0'))
    args = (tmp_path / 'srun.args').read_text().splitlines()
    assert args[7:] == ['--kill-on-bad-exit=1', '--time=1:00:00', '--mem=0',
                        'python', '-u', str(REPO / 'tools' / 'test.py'),
                        'cfg.py', 'ckpt.pth', '--launcher', 'slurm']
