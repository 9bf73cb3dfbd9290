# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Measuring helpers of the side-by-side benchmarks (``benchmarks/``) and
``tools/analysis/model_stats.py``: interleaved timing, memory, FLOPs and the
printed report.

Every benchmark compares implementations in ONE process on the SAME inputs,
timed interleaved (A, B, A, B, ... after one warm-up call each,
:func:`time_interleaved`), and reports medians and the ratio of medians,
which stays meaningful on a shared, noisy machine. Correctness checks are
recorded with :meth:`Report.check`; :meth:`Report.finish` returns the exit
status (1 if a check failed). Timings never decide the exit status. The
report is the benchmark's output: it is printed to standard output.

Memory:

* :func:`peak_memory`: on CUDA the peak of ``torch.cuda.memory_allocated``
  above the starting level; on CPU the peak of the bytes held by tensors
  that ops created during the call (storages tracked at the dispatcher,
  freed when their last user goes), i.e. the same quantity without
  allocator caching. Scratch memory inside a single op is not seen on CPU.
* :func:`saved_bytes`: the bytes of the distinct storages autograd saves
  for backward.

FLOPs: :func:`count_flops` counts matmuls, convolutions and attention with
``torch.utils.flop_counter`` (FLOPs = 2 x multiply-accumulates), adding the
formulas the counter lacks for the attention kernels PyTorch picks on CPU
and for ``nn.MultiheadAttention``'s fused inference path.
"""
import os
import platform
import statistics
import time
import weakref
from typing import Callable, Dict, List, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import (
    FlopCounterMode,
    sdpa_backward_flop_count,
    sdpa_flop_count,
)

MiB = 2.0**20


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


aten = torch.ops.aten


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args,
                   out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward_flop(grad_out_shape, query_shape, key_shape,
                            value_shape, *args, out_shape=None,
                            **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape,
                                    value_shape)


def _native_mha_flop(query_shape, key_shape, value_shape, embed_dim,
                     num_heads, *args, out_shape=None, **kwargs) -> int:
    """In-projections, attention and out-projection of
    ``aten._native_multi_head_attention`` (batch-first inputs)."""
    batch, q_len, _ = query_shape
    k_len = key_shape[1]
    projections = 2 * batch * (q_len + 2 * k_len + q_len) * embed_dim**2
    attention = 4 * batch * q_len * k_len * embed_dim
    return projections + attention


#: Formulas for ops ``FlopCounterMode`` does not know (torch 2.x).
EXTRA_FLOP_FORMULAS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flop,
    aten._scaled_dot_product_flash_attention_for_cpu_backward:
    _cpu_sdpa_backward_flop,
    aten._native_multi_head_attention: _native_mha_flop,
}


def count_flops(fn) -> int:
    """FLOPs (2 x MACs) of the matmuls, convolutions and attention
    ``fn()`` runs."""
    counter = FlopCounterMode(display=False,
                              custom_mapping=EXTRA_FLOP_FORMULAS)
    with counter:
        fn()
    return counter.get_total_flops()


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
