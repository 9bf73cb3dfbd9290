# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Shared helpers of the side-by-side benchmarks in this folder.

Every benchmark compares implementations in ONE process on the SAME inputs,
timed interleaved (A, B, A, B, ... after one warm-up call each), and
reports medians and the ratio of medians, which stays meaningful on a
shared, noisy machine. Correctness checks are recorded with
:meth:`Report.check`; :meth:`Report.finish` returns the exit status (1 if a
check failed). Timings never decide the exit status.

Memory:

* :func:`peak_memory`: on CUDA the peak of ``torch.cuda.memory_allocated``
  above the starting level; on CPU the peak of the bytes held by tensors
  that ops created during the call (storages tracked at the dispatcher,
  freed when their last user goes), i.e. the same quantity without
  allocator caching. Scratch memory inside a single op is not seen on CPU.
* :func:`saved_bytes`: the bytes of the distinct storages autograd saves
  for backward.

Models: :func:`segmentor_config` reads a ViT-B/16 config of
``configs/zegot`` with random CLIP weights (nothing to download; speed does
not depend on the weights), or, with ``small=True``, the same config with a
2-layer width-64 CLIP and 64 px crops.
"""
import argparse
import os
import os.path as osp
import platform
import statistics
import time
import weakref
from typing import Callable, Dict, List, Optional

import torch
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from mmseg_zegot.utils import load_config

MiB = 2.0**20
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: A 2-layer, width-64 CLIP (8 px patches) with CLIP's real tokenizer.
TINY_CLIP = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, layers=2, width=64, head_width=32,
                    patch_size=8, mlp_ratio=2.0),
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2,
                  layers=2, mlp_ratio=2.0))
SMALL_CROP = 64


def default_device() -> str:
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def add_common_args(parser: argparse.ArgumentParser, repeats: int = 5):
    parser.add_argument('--device', default=default_device(),
                        help='cpu or cuda (default: cuda if available)')
    parser.add_argument('--repeats', type=int, default=repeats,
                        help='timed calls of each implementation, '
                        'interleaved (default: %(default)s)')
    parser.add_argument('--small', action='store_true',
                        help='CPU-sized shapes (about a minute on 2 cores)')


def segmentor_config(dataset: str = 'coco-stuff', small: bool = False):
    """The ``model`` of ``configs/zegot/zegot_vitb16_<dataset>.py`` with
    random CLIP weights (``pretrained=None``); ``small``: a tiny CLIP and
    ``SMALL_CROP`` px crops (slide stride 2/3 of it, as 341/512)."""
    cfg = load_config(
        osp.join(REPO, 'configs', 'zegot', f'zegot_vitb16_{dataset}.py'))
    model = cfg.model
    model.image_encoder.pretrained = None
    model.text_encoder.pretrained = None
    if small:
        tiny = dict(model_name='tiny', model_cfg=TINY_CLIP, quick_gelu=False)
        model.image_encoder.update(tiny, out_indices=(0, 1))
        model.text_encoder.update(tiny)
        crop = (SMALL_CROP, SMALL_CROP)
        model.data_preprocessor.size = crop
        model.test_cfg = dict(mode='slide', crop_size=crop,
                              stride=(SMALL_CROP * 2 // 3, ) * 2)
    return model


def build_segmentor(model_cfg, device: torch.device, seed: int = 0):
    """Build and initialise a segmentor (head init, DLFA from CLIP)."""
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    model.decode_head.init_weights()
    model.decode_head.dlfa.init_from_clip(
        *model.image_encoder.output_projection())
    return model.to(device)


def image_batch(height: int, width: int, num: int, num_classes: int,
                device: torch.device, seed: int = 0) -> dict:
    """``test_step`` / ``train_step`` input: random uint8 images and labels."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num):
        inputs.append(torch.randint(0, 256, (3, height, width), generator=gen,
                                    dtype=torch.uint8).to(device))
        label = torch.randint(0, num_classes, (1, height, width),
                              generator=gen)
        sample = SegDataSample(gt_sem_seg=PixelData(data=label.to(device)))
        sample.set_metainfo(dict(img_shape=(height, width),
                                 ori_shape=(height, width),
                                 pad_shape=(height, width)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_interleaved(fns: Dict[str, Callable], repeats: int,
                     device: torch.device,
                     warmup: bool = True) -> Dict[str, List[float]]:
    """Seconds per call of each function: one untimed warm-up call each
    (unless ``warmup`` is False), then ``repeats`` rounds calling every
    function once per round."""
    if warmup:
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


class _LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of storages created by ops inside the mode."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._owned = {}
        self._foreign = set()

    def _release(self, key):
        self.live -= self._owned.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        for arg in tree_leaves((args, kwargs)):
            if isinstance(arg, torch.Tensor):
                key = arg.untyped_storage().data_ptr()
                if key not in self._owned:
                    self._foreign.add(key)
        out = func(*args, **(kwargs or {}))
        for res in tree_leaves(out):
            if not isinstance(res, torch.Tensor) or res.device.type == 'meta':
                continue
            storage = res.untyped_storage()
            key = storage.data_ptr()
            if key in self._owned or key in self._foreign \
                    or storage.nbytes() == 0:
                continue
            self._owned[key] = storage.nbytes()
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._release, key)
        return out


def peak_memory(fn: Callable, device: torch.device) -> int:
    """Peak bytes allocated by ``fn()`` above what existed before it."""
    synchronize(device)
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - start
    tracker = _LiveTensorBytes()
    with tracker:
        fn()
    return tracker.peak


def saved_bytes(fn: Callable) -> int:
    """Bytes of the distinct storages autograd saves while ``fn()`` runs."""
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


def machine(device: torch.device) -> str:
    """One line naming the machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as file:
            cpu = next(line.split(':', 1)[1].strip() for line in file
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    text = (f'{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} '
            f'torch thread(s), torch {torch.__version__}')
    if device.type == 'cuda':
        text = f'{torch.cuda.get_device_name(device)}; ' + text
    return text


class Report:
    """Collects timings, ratios and correctness checks; prints as it goes."""

    def __init__(self, title: str, device: torch.device):
        self.failures = []
        print(f'== {title}')
        print(f'   machine: {machine(device)}')

    def timings(self, times: Dict[str, List[float]], unit: str = 'ms',
                per_call: Optional[float] = None) -> Dict[str, float]:
        """Print the median of each and return the medians (seconds)."""
        scale = {'ms': 1e3, 's': 1.0}[unit]
        medians = {}
        for name, values in times.items():
            medians[name] = statistics.median(values)
            spread = (max(values) - min(values)) * scale
            print(f'   {name:<44} {medians[name] * scale:10.2f} {unit} '
                  f'(median of {len(values)}, range {spread:.2f})'
                  + (f', {per_call / medians[name]:.3f}/s'
                     if per_call is not None else ''))
        return medians

    @staticmethod
    def ratio(label: str, slow: float, fast: float,
              target: float = None) -> float:
        value = slow / fast if fast > 0 else float('inf')
        note = ''
        if target is not None:
            note = (f'  [target >= {target:g}x: '
                    f'{"met" if value >= target else "MISSED"}]')
        print(f'   ratio {label:<52} x{value:8.2f}{note}')
        return value

    @staticmethod
    def value(label: str, text: str) -> None:
        print(f'   {label:<44} {text}')

    def check(self, ok: bool, message: str) -> bool:
        print(f'   check {"OK    " if ok else "FAILED"} {message}')
        if not ok:
            self.failures.append(message)
        return ok

    def finish(self) -> int:
        if self.failures:
            print(f'== {len(self.failures)} correctness check(s) FAILED:')
            for message in self.failures:
                print(f'   - {message}')
            return 1
        print('== all correctness checks passed')
        return 0
