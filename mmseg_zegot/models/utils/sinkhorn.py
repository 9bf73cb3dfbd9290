# Copyright (c) mmseg_zegot contributors. All rights reserved.
r"""Batched log-domain Sinkhorn solver for ZegOT's multi-prompt OT (MPOT).

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
back-propagates through every iteration (memory grows with ``num_iters``).
"""
import math
import operator
from contextlib import nullcontext
from typing import Optional

import torch
from torch import Tensor

__all__ = ['sinkhorn', 'OT_GRAD_MODES']

#: Allowed values of ``grad_mode`` (config key ``ot_grad``).
OT_GRAD_MODES = ('detach', 'unrolled')


def _check_scalars(epsilon, num_iters, grad_mode) -> float:
    """Validate the scalar arguments; return ``epsilon`` as a float."""
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
    return eps


def _log_mass(mass: Optional[Tensor], name: str, batch_shape: torch.Size,
              size: int, num_problems: int, dtype: torch.dtype,
              device: torch.device, unsqueeze_dim: int):
    """``log(mass)`` as a ``(P, M, 1)`` / ``(P, 1, N)`` tensor, or a float
    for the uniform default."""
    if mass is None:
        return -math.log(size)
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
    log_mass = mass.to(device=device, dtype=dtype).log()
    log_mass = log_mass.expand(expected).reshape(num_problems, size)
    return log_mass.unsqueeze(unsqueeze_dim)


def _solve(cost: Tensor, eps: float, num_iters: int,
           source_mass: Optional[Tensor],
           target_mass: Optional[Tensor]) -> Tensor:
    shape = cost.shape
    m, n = shape[-2], shape[-1]
    batch_shape = shape[:-2]
    p = math.prod(batch_shape)
    device_type = cost.device.type
    no_autocast = (torch.autocast(device_type=device_type, enabled=False)
                   if torch.amp.is_autocast_available(device_type)
                   else nullcontext())
    with no_autocast:
        dtype = torch.float64 if cost.dtype == torch.float64 else torch.float32
        log_a = _log_mass(source_mass, 'source_mass', batch_shape, m, p,
                          dtype, cost.device, -1)
        log_b = _log_mass(target_mass, 'target_mass', batch_shape, n, p,
                          dtype, cost.device, -2)
        c = cost.to(dtype).reshape(p, m, n)
        # Row shifts leave the plan unchanged (absorbed by the first u
        # update); shifting before dividing by eps also keeps c/eps finite
        # for large costs.
        c = (c - c.amin(dim=-1, keepdim=True).detach()) / eps
        v = c.new_zeros(p, 1, n)
        for _ in range(num_iters):
            u = log_a - torch.logsumexp(v - c, dim=-1, keepdim=True)
            v = log_b - torch.logsumexp(u - c, dim=-2, keepdim=True)
        plan = torch.exp(u + v - c)
    return plan.reshape(shape)


def sinkhorn(cost: Tensor, epsilon: float = 0.05, num_iters: int = 50,
             grad_mode: str = 'detach', source_mass: Optional[Tensor] = None,
             target_mass: Optional[Tensor] = None) -> Tensor:
    """Entropic OT plans for a batch of cost matrices (log-domain Sinkhorn).

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

    Returns:
        Tensor: the plans ``T``, same shape as ``cost``; float32 (float64 if
        ``cost`` is float64).  ``T.sum(-2)`` equals ``b`` up to rounding;
        ``T.sum(-1)`` approaches ``a`` as ``num_iters`` grows.
    """
    eps = _check_scalars(epsilon, num_iters, grad_mode)
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
    if grad_mode == 'detach':
        with torch.no_grad():
            return _solve(cost, eps, int(num_iters), source_mass, target_mass)
    return _solve(cost, eps, int(num_iters), source_mass, target_mass)
