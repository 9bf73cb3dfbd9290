# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Single-launch kernel-form Sinkhorn for small problems (triton, CUDA).

Shape shorthand: ``P`` independent problems, ``M`` sources (pixels), ``N``
targets (prompts).

The kernel form of :mod:`mmseg_zegot.models.utils.sinkhorn` with uniform
masses ``a = 1/M``, ``b = 1/N``, for problems whose ``M x N`` block (padded
to powers of two) fits in one program's registers. Program ``p`` loads
``cost[p]``, shifts each row by its minimum, forms ``K = exp(-c / eps)``,
runs the fixed number of scaling iterations ``r = a / (K s)``,
``s = b / (K^T r)`` from ``s = 1`` on registers, and writes
``T = diag(r) K diag(s)``: one read of the cost, one write of the plan, one
launch for the whole batch, no host synchronisation, no autograd.

:func:`mmseg_zegot.models.utils.sinkhorn.sinkhorn` calls it only when the
kernel form is numerically safe (its ``cost_spread`` argument). The kernel
also runs under triton's interpreter (``TRITON_INTERPRET=1``) on CPU
tensors, which is how the CPU test suite checks it.
"""
import torch
import triton
import triton.language as tl
from torch import Tensor

#: Largest padded ``M x N`` block one program holds (e.g. M <= 2048 with
#: N <= 8).
MAX_BLOCK = 16384


@triton.jit
def _sinkhorn_kernel(cost_ptr, plan_ptr, m, n, inv_eps, mass_a, mass_b,
                     num_iters, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    rows = tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    row_ok = rows < m
    col_ok = cols < n
    mask = row_ok[:, None] & col_ok[None, :]
    offsets = pid * m * n + rows[:, None] * n + cols[None, :]
    c = tl.load(cost_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
    c = c - tl.min(tl.where(col_ok[None, :], c, float('inf')), axis=1)[:, None]
    kernel = tl.where(mask, tl.exp(-c * inv_eps), 0.0)
    # Padding has a zero kernel, so any finite scaling there is harmless;
    # the sums of padded rows / columns are replaced by 1 to keep them so.
    s = tl.full([BLOCK_N], 1.0, dtype=tl.float32)
    r = tl.zeros([BLOCK_M], dtype=tl.float32)
    for _ in range(num_iters):
        r = mass_a / tl.where(row_ok, tl.sum(kernel * s[None, :], axis=1), 1.0)
        s = mass_b / tl.where(col_ok, tl.sum(kernel * r[:, None], axis=0), 1.0)
    plan = r[:, None] * kernel * s[None, :]
    tl.store(plan_ptr + offsets, plan, mask=mask)


def _blocks(m: int, n: int):
    return triton.next_power_of_2(m), triton.next_power_of_2(n)


def supports(m: int, n: int) -> bool:
    """Whether an ``M x N`` problem fits one program."""
    block_m, block_n = _blocks(m, n)
    return block_m * block_n <= MAX_BLOCK


def fused_sinkhorn(cost: Tensor, eps: float, num_iters: int) -> Tensor:
    """Plans with uniform masses for a batch of costs, in one launch.

    Args:
        cost (Tensor): ``(P, M, N)`` costs (float16, bfloat16 or float32,
            read as float32) with ``supports(M, N)``, whose row spread over
            ``eps`` is small enough for the kernel form.
        eps (float): entropic regularisation.
        num_iters (int): fixed number of iterations, ``>= 1``.

    Returns:
        Tensor: ``(P, M, N)`` float32 plans.
    """
    p, m, n = cost.shape
    assert supports(m, n), (m, n)
    if cost.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        cost = cost.float()
    cost = cost.contiguous()
    plan = torch.empty(cost.shape, dtype=torch.float32, device=cost.device)
    if p == 0:
        return plan
    block_m, block_n = _blocks(m, n)
    num_warps = min(16, max(1, block_m * block_n // 512))
    _sinkhorn_kernel[(p, )](cost, plan, m, n, 1.0 / eps, 1.0 / m, 1.0 / n,
                            num_iters, BLOCK_M=block_m, BLOCK_N=block_n,
                            num_warps=num_warps)
    return plan
