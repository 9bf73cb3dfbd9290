# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""CPU runs keep freed memory for reuse (glibc's ``malloc``).

Why: glibc serves an allocation above its mmap threshold (at most 32 MiB)
with a fresh ``mmap`` and unmaps it on free, so the next tensor of that
size page-faults and zeroes every page again. ZegOT's CPU runs allocate
many such tensors per iteration: the class maps at label or image
resolution are K×H×W floats, 160 MiB per image for COCO-Stuff's 156
classes at 512². On a 2-core CPU, the kernel took 161 s of a 192 s
COCO-Stuff rehearsal run, and 30% of the whole test suite's CPU time
(``docs/performance.md``, "CPU memory").

What: ``mallopt(M_MMAP_MAX, 0)`` serves every allocation from the heap and
``mallopt(M_TRIM_THRESHOLD, 2 GiB - 1)`` keeps freed memory there, so a
freed tensor's pages are reused without faults. The cost: the process
holds on to its peak heap (and its peak resident memory can grow, see the
docs). Numbers do not change: where a tensor lives changes no arithmetic.

Where: the tools (``tools/train.py``, ``tools/test.py``, ``tools/demo.py``)
call :func:`keep_freed_memory_on_cpu` for runs on the CPU; importing
``mmseg_zegot`` changes nothing. ``MMSEG_ZEGOT_KEEP_FREED_MEMORY=0`` in the
environment turns it off. Without glibc (musl, macOS, Windows) nothing is
done. Forked data-loader workers inherit the setting.
"""
import ctypes
import ctypes.util
import logging
import os
from typing import Optional

from mmengine.logging import print_log

from .dist import has_accelerator

__all__ = ['ENV_VAR', 'keep_freed_memory', 'keep_freed_memory_on_cpu']

#: Set to ``0`` to leave ``malloc`` as it is.
ENV_VAR = 'MMSEG_ZEGOT_KEEP_FREED_MEMORY'

#: ``mallopt`` parameters (``<malloc.h>``).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4

#: The largest ``M_TRIM_THRESHOLD`` ``mallopt`` takes (an ``int``).
MAX_TRIM_THRESHOLD = 2**31 - 1


def glibc() -> Optional[ctypes.CDLL]:
    """The C library if it is glibc (has ``mallopt`` and
    ``gnu_get_libc_version``), else None."""
    name = ctypes.util.find_library('c')
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not (hasattr(libc, 'mallopt') and hasattr(libc, 'gnu_get_libc_version')):
        return None
    return libc


def keep_freed_memory() -> bool:
    """Make glibc's ``malloc`` serve every allocation from the heap and keep
    freed memory for reuse (see the module docstring).

    Returns:
        bool: True if set; False without glibc, if :data:`ENV_VAR` is ``0``
        or if ``mallopt`` refused.
    """
    if os.environ.get(ENV_VAR, '1').strip() == '0':
        return False
    libc = glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, MAX_TRIM_THRESHOLD))


def keep_freed_memory_on_cpu(device: Optional[str] = None) -> bool:
    """:func:`keep_freed_memory` for a run on the CPU, with a log line.

    Args:
        device (str, optional): The run's device (``'cpu'``, ``'cuda:0'``);
            None: the CPU when MMEngine finds no accelerator.

    Returns:
        bool: True if the setting was made.
    """
    on_cpu = (device is None and not has_accelerator()) or (
        device is not None and str(device).startswith('cpu'))
    if not on_cpu or not keep_freed_memory():
        return False
    print_log(
        'CPU run: freed memory stays in the process for reuse (glibc '
        f'malloc; {ENV_VAR}=0 turns this off).', logger='current',
        level=logging.INFO)
    return True
