# Copyright (c) mmseg_zegot contributors. All rights reserved.
r"""Batched Sinkhorn solver for ZegOT's multi-prompt OT (MPOT).

Shape shorthand: ``P`` independent problems (in ZegOT one per image, class
and tapped layer, i.e. ``P = B*K*|taps|``), ``M`` sources (pixels / patch
tokens), ``N`` targets (text prompts).  Any leading dims ``(..., M, N)`` are
accepted and flattened to ``(P, M, N)``.

Problem (entropic optimal transport, one per leading index)::

    T* = argmin_{T >= 0}  <T, C> - eps * H(T)
         s.t.  T 1_N = a  (source / pixel marginal, default a_m = 1/M)
               T^T 1_M = b  (target / prompt marginal, default b_n = 1/N)

with ``H(T) = -sum_mn T_mn (log T_mn - 1)``.  (POT writes the regulariser as
``reg * sum T log T``; on the constraint set ``sum T = 1`` the two differ by
a constant, so POT's ``reg`` is our ``eps`` and the minimiser is the same.)

The solution has the form ``T_mn = exp((f_m + g_n - C_mn) / eps)``.  We run
the dual (potential) block-coordinate ascent in log space, in units of
``eps`` (``u = f / eps``, ``v = g / eps``, ``c = C / eps``), starting from
``v = 0``, for a FIXED number of iterations::

    u_m <- log a_m - logsumexp_n(v_n - c_mn)     # source update first
    v_n <- log b_n - logsumexp_m(u_m - c_mn)     # then target update
    T_mn = exp(u_m + v_n - c_mn)

The log-sum-exp form never exponentiates ``C / eps`` on its own, so it stays
finite for costs far larger than ``eps`` (where the kernel form
``exp(-C/eps)`` under/overflows).  Because the target update comes last, the
target (prompt) marginals of the returned plan are exact up to rounding after
any number of iterations; the source (pixel) marginals converge geometrically.
Before the loop each row of ``c`` is shifted by its (detached) minimum: the
first source update absorbs any per-row constant exactly, so the plan and its
gradient are unchanged, but magnitudes, and with them fp32 cancellation, are
reduced when costs carry large offsets.

Kernel (scaling) form.  When the caller knows a bound ``cost_spread`` on the
spread ``max_n C_mn - min_n C_mn`` of every row, the row-shifted kernel
``K = exp(-c)`` has entries in ``[exp(-cost_spread / eps), 1]`` and the same
iterates are computed with ``r = exp(u)``, ``s = exp(v)``, starting from
``s = 1``::

    r <- a / (K s)        s <- b / (K^T r)        T = diag(r) K diag(s)

i.e. with matrix-vector products instead of log-sum-exps (several times
faster, see ``benchmarks/solver.py`` and ``docs/performance.md``).  The
scalings stay within about ``exp(+-cost_spread / eps)`` of ``a`` and ``b``,
so this form is used only while ``cost_spread / eps <= 50`` in float32 (300
in float64), far inside the floating-point range; otherwise the log domain
is used.  ZegOT's cost ``1 - cosine`` has spread <= 2: with eps = 0.05
the ratio is 40.

Fused CUDA path.  In the kernel form, on a CUDA tensor with uniform masses and
no autograd history to build (``'detach'``, or no gradient needed), the whole
solve is one triton kernel (:mod:`.sinkhorn_triton`, if triton is installed):
each problem's ``M x N`` block stays in registers for all iterations, so the
cost is read once and the plan written once, in a single launch.

The formulation (uniform pixel/prompt masses, cost ``1 - cosine score``,
``eps = 0.05``, entropic Sinkhorn) follows PLOT (Chen et al., ICLR 2023) and
OTSeg (Kim et al., arXiv 2403.14183), the published relatives of ZegOT; the
update order (sources, then targets) is PLOT's.  Unlike those, there is no
tolerance test: the loop has no host synchronisation (no ``.item()``, no
Python branching on tensor values), so it runs asynchronously on GPU and
traces cleanly.

Precision: computed in float32 (fp16/bf16/int inputs are upcast; autocast is
disabled inside), or in float64 if ``cost`` is float64 (e.g. for
``gradcheck``).  The result has that compute dtype.

Gradients (config key ``ot_grad``): ``'detach'`` (default) runs everything
under ``torch.no_grad()`` and returns a constant plan; ``'unrolled'``
back-propagates through every iteration (memory grows with ``num_iters``:
in the log domain by a few ``(P, M, N)`` tensors per iteration, in the kernel
form only by the ``(P, M)`` and ``(P, N)`` scalings, since every iteration
reuses the one kernel tensor).
"""
import functools
import math
import operator
from contextlib import nullcontext
from types import ModuleType
from typing import Optional, Union

import torch
from torch import Tensor

__all__ = [
    'sinkhorn', 'check_sinkhorn_args', 'OT_GRAD_MODES', 'KERNEL_FORM_MAX_RANGE'
]

#: Allowed values of ``grad_mode`` (config key ``ot_grad``).
OT_GRAD_MODES = ('detach', 'unrolled')

#: Largest ``cost_spread / epsilon`` for which the kernel form is used, per
#: compute dtype (the kernel entries then lie in ``[exp(-range), 1]``).
KERNEL_FORM_MAX_RANGE = {torch.float32: 50.0, torch.float64: 300.0}


def check_sinkhorn_args(epsilon, num_iters, grad_mode,
                        cost_spread=None) -> float:
    """Validate the scalar arguments of :func:`sinkhorn`, naming their
    config keys; return ``epsilon`` as a float."""
    if not isinstance(grad_mode, str) or grad_mode not in OT_GRAD_MODES:
        raise ValueError(
            f'ot_grad (sinkhorn grad_mode) must be one of {OT_GRAD_MODES}, '
            f'got {grad_mode!r}')
    try:
        eps = float(epsilon)
    except (TypeError, ValueError):
        eps = float('nan')
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError('ot_epsilon (sinkhorn epsilon) must be a finite '
                         f'number > 0, got {epsilon!r}')
    try:
        if isinstance(num_iters, bool):
            raise TypeError
        iters = operator.index(num_iters)
    except TypeError:
        iters = 0
    if iters < 1:
        raise ValueError('ot_iters (sinkhorn num_iters) must be an integer '
                         f'>= 1, got {num_iters!r}')
    if cost_spread is not None and (
            isinstance(cost_spread, bool)
            or not isinstance(cost_spread, (int, float))
            or not math.isfinite(cost_spread) or cost_spread < 0):
        raise ValueError('sinkhorn cost_spread must be None or a finite '
                         f'number >= 0, got {cost_spread!r}')
    return eps


def _mass(mass: Optional[Tensor], name: str, batch_shape: torch.Size,
          size: int, num_problems: int, dtype: torch.dtype,
          device: torch.device,
          unsqueeze_dim: int) -> Union[float, Tensor]:
    """``mass`` as a ``(P, M, 1)`` / ``(P, 1, N)`` tensor, or the float
    ``1 / size`` for the uniform default."""
    if mass is None:
        return 1.0 / size
    if not isinstance(mass, Tensor):
        raise TypeError(f'{name} must be a Tensor or None, got '
                        f'{type(mass).__name__}')
    expected = (*batch_shape, size)
    ok = mass.dim() >= 1 and mass.shape[-1] == size
    if ok:
        try:
            ok = torch.broadcast_shapes(mass.shape, expected) == expected
        except RuntimeError:
            ok = False
    if not ok:
        raise ValueError(f'{name} of shape {tuple(mass.shape)} does not '
                         f'broadcast to the cost batch shape {expected}')
    if mass.is_complex():
        raise TypeError(f'{name} must be real, got {mass.dtype}')
    mass = mass.to(device=device, dtype=dtype)
    mass = mass.expand(expected).reshape(num_problems, size)
    return mass.unsqueeze(unsqueeze_dim)


def _log(mass: Union[float, Tensor]) -> Union[float, Tensor]:
    return math.log(mass) if isinstance(mass, float) else mass.log()


def _log_domain_plan(c: Tensor, a, b, num_iters: int) -> Tensor:
    """Log-domain iterations on the scaled, row-shifted cost ``c``."""
    log_a, log_b = _log(a), _log(b)
    v = c.new_zeros(c.shape[0], 1, c.shape[2])
    for _ in range(num_iters):
        u = log_a - torch.logsumexp(v - c, dim=-1, keepdim=True)
        v = log_b - torch.logsumexp(u - c, dim=-2, keepdim=True)
    return torch.exp(u + v - c)


def _kernel_form_plan(c: Tensor, a, b, num_iters: int) -> Tensor:
    """Scaling iterations on ``K = exp(-c)``, ``c`` scaled and row-shifted.

    The kernel is stored transposed, ``(P, N, M)``, so that both products
    are batched matrix-vector products over a contiguous M axis (about 4x
    faster on a CPU than reducing the ``(P, M, N)`` layout over N, and
    accurate: float32 plans stay within ~1e-6 of float64 ones at M = 1024).
    """
    kernel = torch.exp(-c.transpose(-1, -2).contiguous())  # P×N×M
    a_row = a if isinstance(a, float) else a.transpose(-1, -2)  # P×1×M
    b_col = b if isinstance(b, float) else b.transpose(-1, -2)  # P×N×1
    s = c.new_ones(c.shape[0], c.shape[2], 1)  # P×N×1
    for _ in range(num_iters):
        r = a_row / torch.bmm(s.transpose(-1, -2), kernel)  # P×1×M
        s = b_col / torch.bmm(kernel, r.transpose(-1, -2))  # P×N×1
    return (s * kernel * r).transpose(-1, -2).contiguous()


@functools.cache
def _fused_solver() -> Optional[ModuleType]:
    """:mod:`.sinkhorn_triton`, or None without triton (imported on first
    use: importing triton is not free)."""
    try:
        from . import sinkhorn_triton
    except ImportError:
        return None
    return sinkhorn_triton


def _solve(cost: Tensor, eps: float, num_iters: int,
           source_mass: Optional[Tensor], target_mass: Optional[Tensor],
           cost_spread: Optional[float]) -> Tensor:
    shape = cost.shape
    m, n = shape[-2], shape[-1]
    batch_shape = shape[:-2]
    p = math.prod(batch_shape)
    device_type = cost.device.type
    dtype = torch.float64 if cost.dtype == torch.float64 else torch.float32
    kernel_form = (cost_spread is not None
                   and cost_spread / eps <= KERNEL_FORM_MAX_RANGE[dtype])
    if kernel_form and device_type == 'cuda' and source_mass is None \
            and target_mass is None and dtype == torch.float32 \
            and not (torch.is_grad_enabled() and cost.requires_grad):
        fused = _fused_solver()
        if fused is not None and fused.supports(m, n):
            plan = fused.fused_sinkhorn(cost.reshape(p, m, n), eps, num_iters)
            return plan.reshape(shape)
    no_autocast = (torch.autocast(device_type=device_type, enabled=False)
                   if torch.amp.is_autocast_available(device_type)
                   else nullcontext())
    with no_autocast:
        a = _mass(source_mass, 'source_mass', batch_shape, m, p, dtype,
                  cost.device, -1)
        b = _mass(target_mass, 'target_mass', batch_shape, n, p, dtype,
                  cost.device, -2)
        c = cost.to(dtype).reshape(p, m, n)
        # Row shifts leave the plan unchanged (absorbed by the first u
        # update); shifting before dividing by eps also keeps c/eps finite
        # for large costs.
        c = (c - c.detach().amin(dim=-1, keepdim=True)) / eps
        solve = _kernel_form_plan if kernel_form else _log_domain_plan
        plan = solve(c, a, b, num_iters)
    return plan.reshape(shape)


def sinkhorn(cost: Tensor, epsilon: float = 0.05, num_iters: int = 50,
             grad_mode: str = 'detach', source_mass: Optional[Tensor] = None,
             target_mass: Optional[Tensor] = None,
             cost_spread: Optional[float] = None) -> Tensor:
    """Entropic OT plans for a batch of cost matrices (Sinkhorn).

    Args:
        cost (Tensor): ``(..., M, N)`` costs, finite; ``(M, N)`` is a single
            problem.  In ZegOT ``1 - S`` with ``S`` the pixel-prompt cosine
            score.
        epsilon (float): entropic regularisation ``eps > 0`` (``ot_epsilon``).
        num_iters (int): fixed number of Sinkhorn iterations (each one a
            source then a target update), ``>= 1`` (``ot_iters``).
        grad_mode (str): ``'detach'`` (constant plan, no autograd history)
            or ``'unrolled'`` (differentiate through all iterations)
            (``ot_grad``).
        source_mass (Tensor, optional): ``(..., M)`` source marginal ``a``,
            broadcastable to ``cost.shape[:-1]``; positive, summing to 1 per
            problem (not checked: checking values would synchronise).
            Default uniform ``1/M``.
        target_mass (Tensor, optional): ``(..., N)`` target marginal ``b``,
            likewise.  Default uniform ``1/N``.
        cost_spread (float, optional): a bound, known to the caller, on
            ``max_n C_mn - min_n C_mn`` for every row (2 for ZegOT's
            ``1 - cosine``).  Trusted, not checked (checking would
            synchronise).  With ``cost_spread / epsilon`` within
            :data:`KERNEL_FORM_MAX_RANGE` the faster kernel form is used;
            None (default) always iterates in the log domain.  Both give the
            same iterates up to rounding.

    Returns:
        Tensor: the plans ``T``, same shape as ``cost``; float32 (float64 if
        ``cost`` is float64).  ``T.sum(-2)`` equals ``b`` up to rounding;
        ``T.sum(-1)`` approaches ``a`` as ``num_iters`` grows.
    """
    eps = check_sinkhorn_args(epsilon, num_iters, grad_mode, cost_spread)
    if not isinstance(cost, Tensor):
        raise TypeError(f'cost must be a Tensor, got {type(cost).__name__}')
    if cost.dim() < 2:
        raise ValueError('cost must have shape (..., M, N) with at least 2 '
                         f'dims, got shape {tuple(cost.shape)}')
    if cost.shape[-2] < 1 or cost.shape[-1] < 1:
        raise ValueError('cost must have M >= 1 sources and N >= 1 targets, '
                         f'got shape {tuple(cost.shape)}')
    if cost.is_complex():
        raise TypeError(f'cost must be real, got {cost.dtype}')
    args = (cost, eps, int(num_iters), source_mass, target_mass,
            None if cost_spread is None else float(cost_spread))
    if grad_mode == 'detach':
        with torch.no_grad():
            return _solve(*args)
    return _solve(*args)
