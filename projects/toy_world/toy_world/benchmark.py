# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The embedded default main job: zero-shot segmentation of the toy world.

    python projects/toy_world/tools/run_benchmark.py    # what `make demo` runs
    python projects/toy_world/tools/run_benchmark.py --split-seeds 1 2 \
        --train-seeds 0 1 2

Generates the procedural world (:mod:`.world`), takes the committed toy CLIP
(``projects/toy_world/assets/toy_clip``, pretrained by :mod:`.pretrain` on
captions describing every shape), then runs, each through the real
``tools/train.py`` / ``tools/test.py`` (paths are from the repository root,
``configs/`` those of ``projects/toy_world/``):

* ZegOT (``configs/zegot_toy.py``), trained on the seen shapes only,
  tested as configured and again without the seen-class calibration
  (``seen_bias=0``, same weights);
* the training-free dense-CLIP baseline (``configs/dense-clip_toy.py``);
* a closed-set baseline, a stock mmseg FCN head on the same frozen CLIP
  trained on the seen shapes (``configs/closed-set_toy.py``);

and prints mIoU(seen), mIoU(unseen) and hIoU for each (medians over the
training seeds), and saves a picture of ZegOT's predictions.

The console shows, per run, its number, the ETA of all runs, the training
and testing progress (iterations, loss, the run's own ETA) and its results;
third-party warnings a user cannot act on are kept out of it (the tools it
runs get ``PYTHONWARNINGS=ignore``; the project's ``tools/_bootstrap_path.py``
filters those of its own imports). Every run's full
log (``train.log``, ``test.log``, ``init.log``, ``figure.log``) is kept
under ``--work-dir``, and a failed run prints the end of its log.
"""
import argparse
import contextlib
import json
import os
import os.path as osp
import re
import statistics
import subprocess
import sys
import time
from typing import Optional

from mmseg_zegot.datasets.splits import get_split
from mmseg_zegot.utils import load_config

from .world import choose_unseen, generate_world

#: The project's folder and the repository root, which the tools run from.
PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(osp.dirname(PROJECT))
CLIP_DIR = osp.join(PROJECT, 'assets', 'toy_clip')
CONFIGS = 'projects/toy_world/configs'
METHODS = (
    ('ZegOT', f'{CONFIGS}/zegot_toy.py', True),
    ('dense CLIP (training-free)', f'{CONFIGS}/dense-clip_toy.py', False),
    ('closed-set FCN (seen only)', f'{CONFIGS}/closed-set_toy.py', True),
)
#: ZegOT's checkpoints are also tested without the seen-class calibration.
UNCALIBRATED = 'ZegOT, seen_bias=0'
#: MMEngine's progress records: ``Iter(train) [ 50/2000]  ... eta: 0:01:10
#: ... loss: 12.3 ...`` (the final metric records carry no ``eta``).
PROGRESS = re.compile(r' - mmengine - INFO - Iter\((train|val|test)\) '
                      r'\[\s*(\d+)/(\d+)\].*?eta: (\S+)(?:.*? loss: (\S+))?')


def add_common_args(parser: argparse.ArgumentParser,
                    work_dir: str) -> None:
    """Options shared with ``tools/run_ablations.py``: world, CLIP,
    seeds."""
    parser.add_argument('--work-dir', default=work_dir)
    parser.add_argument('--world-seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=2000)
    parser.add_argument('--num-val', type=int, default=300)
    parser.add_argument(
        '--unseen', nargs='+', default=None,
        help="unseen shapes of the default split (default: the 'toy' split)")
    parser.add_argument('--train-seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--iters', type=int, default=None,
                        help='training iterations (default: the configs)')
    parser.add_argument('--clip-dir', default=CLIP_DIR,
                        help='toy CLIP weights and config')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, 'work_dirs/toy_benchmark')
    parser.add_argument(
        '--split-seeds', type=int, nargs='*', default=[],
        help='also run splits with as many unseen shapes chosen by these '
        'seeds')
    return parser.parse_args()


def log(message: str) -> None:
    print(f'[{time.strftime("%H:%M:%S")}] {message}', flush=True)


def progress_line(line: str) -> Optional[str]:
    """The short console form of a tool's log line if it reports progress
    (``'    train 50/2000  loss 12.3  eta 0:01:10'``), else None: config
    echoes, metric tables and warnings stay in the log file."""
    match = PROGRESS.search(line)
    if match is None:
        return None
    mode, done, total, eta_left, loss = match.groups()
    loss = f'  loss {loss}' if loss else ''
    return f'    {mode} {done}/{total}{loss}  eta {eta_left}'


def run_tool(tool: str, args, log_file: str) -> None:
    """Run ``tools/<tool>``, showing its progress, keeping the full log."""
    command = [sys.executable, osp.join(REPO, 'tools', tool), *map(str, args)]
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PYTHONWARNINGS'] = 'ignore'
    with open(log_file, 'w') as out, subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            out.write(line)
            short = progress_line(line)
            if short is not None:
                print(short, flush=True)
    if process.returncode:
        with open(log_file) as failed:
            tail = failed.read()[-4000:]
        raise SystemExit(f'{tool} failed (log: {log_file}):\n{tail}')


def split_options(config: str, unseen) -> list:
    """--cfg-options setting ``unseen_classes`` of every ``zero_shot_split``
    dict the config holds (model, datasets, label transforms)."""
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                here = f'{path}.{key}' if path else key
                if key == 'zero_shot_split' and isinstance(value, dict):
                    found.append(f'{here}.unseen_classes')
                else:
                    walk(value, here)
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                walk(value, f'{path}.{i}')

    cfg = load_config(osp.join(REPO, config))
    walk({k: cfg[k] for k in ('model', 'train_dataloader', 'val_dataloader',
                              'test_dataloader')}, '')
    value = '[' + ','.join(unseen) + ']'
    return [f'{key}={value}' for key in found]


def latest_metrics(folder: str) -> dict:
    results = [
        osp.join(root, name) for root, _, names in os.walk(folder)
        for name in names if name.endswith('.json')
    ]
    with open(max(results, key=osp.getmtime)) as file:
        return json.load(file)


def schedule_options(config: str, iters: int) -> list:
    """--cfg-options for ``iters`` training iterations: the config's
    schedulers scaled to it, validation and checkpoint at the end."""
    cfg = load_config(osp.join(REPO, config))
    total = cfg.train_cfg.max_iters
    options = [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}'
    ]
    begin = 0
    for i, scheduler in enumerate(cfg.param_scheduler):
        begin = max(begin, round(scheduler.get('begin', 0) * iters / total))
        end = max(begin + 1,
                  round(scheduler.get('end', total) * iters / total))
        options += [f'param_scheduler.{i}.begin={begin}',
                    f'param_scheduler.{i}.end={end}']
        begin = end
    return options


def run_method(name, config, trains, work, data_root, clip, unseen, seed,
               iters, extra_options=()) -> dict:
    """Train (when ``trains``) and test one method; its metrics."""
    os.makedirs(work, exist_ok=True)
    options = [
        *split_options(config, unseen), f'randomness.seed={seed}',
        *[f'{loader}.dataset.data_root={data_root}'
          for loader in ('train_dataloader', 'val_dataloader',
                         'test_dataloader')]
    ]
    for key in ('image_encoder', 'text_encoder', 'backbone'):
        if key in load_config(osp.join(REPO, config)).model:
            options += [f'model.{key}.pretrained={clip[1]}',
                        f'model.{key}.model_cfg={clip[0]}']
    if iters is not None and trains:
        options += schedule_options(config, iters)
    options += list(extra_options)
    start = time.time()
    if trains:
        run_tool('train.py', [config, '--work-dir', work, '--cfg-options',
                              *options], osp.join(work, 'train.log'))
        with open(osp.join(work, 'last_checkpoint')) as file:
            checkpoint = file.read().strip()
    else:
        checkpoint = osp.join(work, 'init.pth')
        run_tool('init_checkpoint.py',
                 [config, checkpoint, '--cfg-options', *options],
                 osp.join(work, 'init.log'))
    metrics = test_checkpoint(name, config, checkpoint, options,
                              osp.join(work, 'test'), start)
    return dict(metrics=metrics, checkpoint=checkpoint, options=options)


def test_checkpoint(name, config, checkpoint, options, test_dir,
                    start) -> dict:
    """``tools/test.py`` on ``checkpoint``; its metrics, logged."""
    run_tool('test.py', [config, checkpoint, '--work-dir', test_dir,
                         '--cfg-options', *options], test_dir + '.log')
    metrics = latest_metrics(test_dir)
    log(f'  {name}: mIoU(seen) {metrics["mIoU.seen"]:.1f}  mIoU(unseen) '
        f'{metrics["mIoU.unseen"]:.1f}  hIoU {metrics["hIoU"]:.1f}  '
        f'({time.time() - start:.0f} s)')
    return metrics


def eta(durations: dict, pending: list) -> str:
    """``', ETA ...'`` for the runs of the methods named in ``pending``:
    each as long as the finished runs of its method took on average (of all
    methods, for one not run yet); empty before any run has finished."""
    finished = [seconds for runs in durations.values() for seconds in runs]
    if not finished:
        return ''
    overall = statistics.mean(finished)
    left = sum(statistics.mean(durations.get(name) or [overall])
               for name in pending)
    return f' (ETA of all runs: {left / 60:.1f} min)'


def print_table(rows) -> None:
    """rows: (split label, method, [metrics of each seed])."""
    header = (f'{"split (unseen)":<32} {"method":<28} {"mIoU(S)":>8} '
              f'{"mIoU(U)":>8} {"hIoU":>8}  seeds')
    print('\n' + header + '\n' + '-' * len(header))
    for split, method, runs in rows:
        values = [
            statistics.median(run[key] for run in runs)
            for key in ('mIoU.seen', 'mIoU.unseen', 'hIoU')
        ]
        print(f'{split:<32} {method:<28} {values[0]:>8.1f} {values[1]:>8.1f} '
              f'{values[2]:>8.1f}  {len(runs)}')
    print('(medians over training seeds; mIoU in %)\n', flush=True)


def prepare_world(work_dir: str, args) -> str:
    """Generate the toy world under ``work_dir`` unless it is there with
    the same seed and sizes; its data root."""
    data_root = osp.join(work_dir, 'world')
    world_file = osp.join(data_root, 'world.json')
    wanted = dict(seed=args.world_seed, num_train=args.num_train,
                  num_val=args.num_val)
    current = json.load(open(world_file)) if osp.isfile(world_file) else {}
    if any(current.get(k) != v for k, v in wanted.items()):
        log(f'Generating the toy world ({args.num_train} train / '
            f'{args.num_val} val images) in {data_root}')
        generate_world(data_root, progress=True, **wanted)
    else:
        log(f'Toy world ready in {data_root}')
    return data_root


def toy_clip_files(clip_dir: str) -> tuple:
    """(config JSON, weights) of the toy CLIP in ``clip_dir``."""
    clip = (osp.join(clip_dir, 'toy_clip.json'),
            osp.join(clip_dir, 'toy_clip.pth'))
    if not all(osp.isfile(path) for path in clip):
        raise SystemExit(
            f'No toy CLIP in {clip_dir}: run `python '
            'projects/toy_world/tools/pretrain_clip.py` (about 16 minutes) '
            'and pass its output folder with --clip-dir.')
    log(f'Toy CLIP: {clip[1]}')
    return clip


def main():
    args = parse_args()
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    started = time.time()

    data_root = prepare_world(work_dir, args)
    clip = toy_clip_files(args.clip_dir)

    classes = get_split('toy').classes
    default = tuple(args.unseen or get_split('toy').unseen)
    splits = [default] + [
        tuple(choose_unseen(classes, len(default), seed))
        for seed in args.split_seeds
    ]
    # The method of every run, in order, for the overall progress and ETA.
    plan = [name for _ in splits for name, _, trains in METHODS
            for _ in (args.train_seeds if trains else [0])]
    rows, first_zegot, durations = [], None, {}
    for unseen in splits:
        label = ','.join(unseen)
        log(f'Split: unseen = {label}')
        for name, config, trains in METHODS:
            runs, uncalibrated = [], []
            for seed in (args.train_seeds if trains else [0]):
                work = osp.join(work_dir, label.replace(',', '-'),
                                osp.splitext(osp.basename(config))[0],
                                f'seed{seed}')
                done = sum(len(times) for times in durations.values())
                log(f'[{done + 1}/{len(plan)}] {name}, seed {seed}'
                    + eta(durations, plan[done:]))
                start = time.time()
                result = run_method(name, config, trains, work, data_root,
                                    clip, unseen, seed, args.iters)
                durations.setdefault(name, []).append(time.time() - start)
                runs.append(result['metrics'])
                if name == 'ZegOT':
                    first_zegot = first_zegot or (config, result)
                    uncalibrated.append(test_checkpoint(
                        UNCALIBRATED, config, result['checkpoint'],
                        result['options'] + ['model.decode_head.seen_bias=0'],
                        osp.join(work, 'test_seen-bias-0'), time.time()))
            rows.append((label, name, runs))
            if name == 'ZegOT':
                rows.append((label, UNCALIBRATED, uncalibrated))
    print_table(rows)
    from .figure import save_prediction_figure
    config, result = first_zegot
    figure = osp.join(work_dir, 'zegot_toy_predictions.png')
    with open(osp.join(work_dir, 'figure.log'), 'w') as figure_log, \
            contextlib.redirect_stdout(figure_log):
        save_prediction_figure(osp.join(REPO, config), result['checkpoint'],
                               result['options'], data_root, figure)
    log(f'Picture of ZegOT predictions: {figure}')
    log(f'Full logs: {work_dir}/<split>/<method>/seed<N>/*.log')
    log(f'Done in {(time.time() - started) / 60:.1f} min.')

