# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Sinkhorn side by side: ours vs the published-style loop vs POT.

Three solvers on the same cost tensors, at ZegOT's per-tap shapes (one call
per tapped layer, as the reference code makes it): B=4 crops of 512^2
(M = 32*32 = 1024 pixels), K = 171 classes (all, inference) for the forward
and K = 156 (seen, training) for forward+backward, N = 4 and 8 prompts,
eps = 0.05, the same fixed iteration count (default 50):

* ours: :func:`mmseg_zegot.models.utils.sinkhorn.sinkhorn` as the head
  calls it (``cost_spread=2``: kernel form; the fused triton kernel on
  CUDA), ``grad_mode='detach'`` (default) and ``'unrolled'``;
* reference: :func:`reference_sinkhorn` below, a re-implementation of the
  loop of the published ZegOT/OTSeg code as described there: log domain,
  a ``while`` loop with a convergence test read with ``.item()`` every
  iteration (a host synchronisation), autograd through every iteration.
  For "equal iterations" its tolerance is negative, so it never stops early
  but still pays for the test;
* POT: ``ot.batch.solve_batch(method='log_sinkhorn', grad='detach',
  tol=0)``, POT's batched log-domain solver (it tests convergence every 10
  iterations).

"forward" runs under ``torch.no_grad()`` (inference); "forward+backward" is
the refined score of the head, ``loss = sum(M*N * T * S)`` with
``cost = 1 - S``, backpropagated to ``S``. Costs are ``1 - cos`` of random
unit vectors of ``--feature-dim`` dimensions (32: per-pixel cost spreads of
about 1, i.e. 20 eps).

Accuracy (max |T - T_ref| * M*N, i.e. on the scale where a uniform plan is
all ones): every solver against the float64 log-domain solver at the same
iteration count (rounding only; ours must be within 1e-5, the float32
log-domain loops of the reference and POT, which skip the row shift, are
only held to 1e-4), ours against the reference loop, and an
accuracy-vs-iterations curve against the float64 solution at convergence.

Exit status 1 if a correctness check fails (plans, gradients, the memory
bound, no host sync on CUDA); timings are reported, never asserted.

    python benchmarks/solver.py [--small] [--device cuda] [--repeats 5]
"""
import argparse
import math
import sys

import ot
import torch
import torch.nn.functional as F
from common import (
    add_common_args,
)

from mmseg_zegot.models.utils.sinkhorn import sinkhorn
from mmseg_zegot.utils.benchmark import (
    MiB,
    Report,
    peak_memory,
    saved_bytes,
    time_interleaved,
)

EPS = 0.05


def reference_sinkhorn(cost, eps, max_iters=100, tol=1e-6):
    """The published-style loop: log domain, ``.item()`` test, autograd.

    Args:
        cost (Tensor): (..., M, N) costs.
        eps (float): entropic regularisation.
        max_iters (int): iteration cap (100 in the published code).
        tol (float): stop when the mean change of the source potential is
            below it (1e-6 published; negative: never stop early).

    Returns:
        tuple[Tensor, int]: the plans (same shape as ``cost``) and the number
        of iterations run.
    """
    shape = cost.shape
    m, n = shape[-2:]
    log_k = -cost.reshape(-1, m, n) / eps
    p = log_k.shape[0]
    log_a = torch.full((p, m), -math.log(m), device=cost.device)
    log_b = torch.full((p, n), -math.log(n), device=cost.device)
    u = torch.zeros(p, m, device=cost.device)
    v = torch.zeros(p, n, device=cost.device)
    iters = 0
    while iters < max_iters:
        u_prev = u
        u = log_a - torch.logsumexp(log_k + v[:, None, :], dim=2)
        v = log_b - torch.logsumexp(log_k + u[:, :, None], dim=1)
        err = (u - u_prev).abs().mean()
        iters += 1
        if err.item() < tol:
            break
    plan = torch.exp(log_k + u[:, :, None] + v[:, None, :])
    return plan.reshape(shape), iters


def pot_sinkhorn(cost, eps, iters):
    """POT's batched log-domain Sinkhorn, fixed iterations, no gradient."""
    m, n = cost.shape[-2:]
    result = ot.batch.solve_batch(cost.reshape(-1, m, n), eps,
                                  max_iter=iters, tol=0.0,
                                  method='log_sinkhorn', grad='detach')
    return result.plan.reshape(cost.shape)


def make_scores(b, k, m, n, dim, device, seed=0):
    """Cosine scores S (B, K, M, N) of random unit vectors."""
    gen = torch.Generator().manual_seed(seed)
    feats = F.normalize(torch.randn(b, m, dim, generator=gen), dim=-1)
    queries = F.normalize(torch.randn(b, k, n, dim, generator=gen), dim=-1)
    return torch.einsum('bmc,bknc->bkmn', feats, queries).to(device)


def scaled_diff(plan, ref):
    m, n = ref.shape[-2:]
    return ((plan.double() - ref.double()).abs().max() * m * n).item()


def solvers(iters):
    """name -> cost -> plan, all at ``iters`` iterations."""
    return {
        'ours (detach)': lambda c: sinkhorn(c, EPS, iters, cost_spread=2.0),
        'ours (unrolled)': lambda c: sinkhorn(c, EPS, iters, 'unrolled',
                                              cost_spread=2.0),
        'reference loop': lambda c: reference_sinkhorn(c, EPS, iters, -1.0)[0],
        'POT ot.batch': lambda c: pot_sinkhorn(c, EPS, iters),
    }


def forward_section(report, scores, iters, args, device):
    cost = 1.0 - scores
    cost_mib = cost.numel() * cost.element_size() / MiB
    report.value('cost tensor', f'{tuple(cost.shape)}, {cost_mib:.1f} MiB')
    impls = solvers(iters)
    impls.pop('ours (unrolled)')  # identical to detach without autograd

    def forward(fn):
        def run():
            with torch.no_grad():
                return fn(cost)
        return run

    fns = {f'forward {name}': forward(fn) for name, fn in impls.items()}
    fns['forward reference as published (<=100, tol 1e-6)'] = forward(
        lambda c: reference_sinkhorn(c, EPS)[0])
    medians = report.timings(time_interleaved(fns, args.repeats, device))
    ours = medians['forward ours (detach)']
    gpu = device.type == 'cuda'
    report.ratio('forward: reference loop / ours (equal iterations)',
                 medians['forward reference loop'], ours, 20 if gpu else 3)
    report.ratio('forward: POT / ours', medians['forward POT ot.batch'], ours,
                 5 if gpu else None)
    report.ratio('forward: reference as published / ours',
                 medians['forward reference as published (<=100, tol 1e-6)'],
                 ours)
    with torch.no_grad():
        _, published_iters = reference_sinkhorn(cost, EPS)
    report.value('reference as published ran',
                 f'{published_iters} iterations')
    for name, fn in fns.items():
        report.value(f'peak memory {name}',
                     f'{peak_memory(fn, device) / MiB:.1f} MiB')

    with torch.no_grad():
        ref64 = sinkhorn(cost.double(), EPS, iters)
        plans = {name: fn(cost) for name, fn in impls.items()}
    errors = {name: scaled_diff(plan, ref64) for name, plan in plans.items()}
    ours_error = errors.pop('ours (detach)')
    report.check(ours_error <= 1e-5, f'ours: plan vs float64 at {iters} '
                 f'iterations, {ours_error:.2e} <= 1e-5')
    for name, error in errors.items():  # their own float32 rounding
        report.check(error <= 1e-4, f'{name}: plan vs float64 at {iters} '
                     f'iterations, {error:.2e} <= 1e-4 (same iterates)')
    diff = scaled_diff(plans['ours (detach)'], plans['reference loop'])
    bound = errors['reference loop'] + 1e-5
    report.check(diff <= bound, f'ours vs reference loop plan, {diff:.2e} '
                 f"<= the reference's own error + 1e-5 = {bound:.2e}")
    if gpu:
        check_no_sync(report, cost, iters)


def check_no_sync(report, cost, iters):
    ok = True
    for mode in ('detach', 'unrolled'):
        sinkhorn(cost, EPS, iters, mode, cost_spread=2.0)  # warm-up
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode('error')
        try:
            sinkhorn(cost, EPS, iters, mode, cost_spread=2.0)
        except RuntimeError as error:
            ok = False
            print(f'   {mode}: {error}')
        finally:
            torch.cuda.set_sync_debug_mode('default')
    report.check(ok, 'no host synchronisation inside our solver '
                 "(torch.cuda.set_sync_debug_mode('error'))")


def backward_section(report, scores, iters, args, device):
    m, n = scores.shape[-2:]
    cost_bytes = scores.numel() * scores.element_size()
    leaf = scores.clone().requires_grad_(True)
    impls = solvers(iters)
    impls.pop('POT ot.batch')  # its 'detach' gradient is ours (detach)

    def objective(fn):
        return (fn(1.0 - leaf) * leaf).sum() * (m * n)

    def step(fn):
        def run():
            leaf.grad = None
            objective(fn).backward()
        return run

    fns = {f'fwd+bwd {name}': step(fn) for name, fn in impls.items()}
    fns['fwd+bwd POT ot.batch (detach)'] = step(
        lambda c: pot_sinkhorn(c, EPS, iters))
    medians = report.timings(time_interleaved(fns, args.repeats, device))
    gpu = device.type == 'cuda'
    ours = medians['fwd+bwd ours (detach)']
    report.ratio('fwd+bwd: reference loop / ours (detach, default)',
                 medians['fwd+bwd reference loop'], ours, 10 if gpu else None)
    report.ratio('fwd+bwd: reference loop / ours (unrolled, same gradient)',
                 medians['fwd+bwd reference loop'],
                 medians['fwd+bwd ours (unrolled)'])
    report.ratio('fwd+bwd: POT (detach) / ours (detach)',
                 medians['fwd+bwd POT ot.batch (detach)'], ours)
    for name, fn in fns.items():
        report.value(f'peak memory {name}',
                     f'{peak_memory(fn, device) / MiB:.1f} MiB')
    saved = {}
    for name, fn in impls.items():
        saved[name] = saved_bytes(lambda fn=fn: objective(fn))
        report.value(f'saved for backward, {name}',
                     f'{saved[name] / MiB:8.1f} MiB = '
                     f'{saved[name] / cost_bytes:6.1f} x cost tensor')
    only_solver = saved_bytes(lambda: sinkhorn(1.0 - leaf, EPS, iters,
                                               cost_spread=2.0))
    report.check(only_solver == 0, 'ours (detach): the solver itself saves '
                 f'{only_solver} bytes for backward')
    report.check(saved['ours (detach)'] <= 3 * cost_bytes,
                 'ours (detach): solver + refined score save '
                 f'{saved["ours (detach)"] / cost_bytes:.2f} x cost <= 3')

    grads = {}
    for name in ('ours (unrolled)', 'reference loop'):
        leaf.grad = None
        objective(impls[name]).backward()
        grads[name] = leaf.grad.clone()
    scale = grads['reference loop'].abs().max().item()
    diff = (grads['ours (unrolled)'] - grads['reference loop']).abs().max()
    report.check(diff.item() <= 1e-4 * scale,
                 'ours (unrolled) vs reference loop gradient, max diff '
                 f'{diff.item():.2e} <= 1e-4 x {scale:.2e}')


def accuracy_curve(report, scores, counts):
    """Error of our float32 plan against the converged float64 one."""
    cost = 1.0 - scores
    with torch.no_grad():
        ref = sinkhorn(cost.double(), EPS, 2000, cost_spread=2.0)
        errors = [scaled_diff(sinkhorn(cost, EPS, it, cost_spread=2.0), ref)
                  for it in counts]
        rows = sinkhorn(cost, EPS, counts[-1], cost_spread=2.0).sum(-1)
    report.value('accuracy vs iterations (vs converged fp64)',
                 ', '.join(f'{it}: {err:.1e}'
                           for it, err in zip(counts, errors)))
    m = cost.shape[-2]
    report.value(f'pixel-marginal error after {counts[-1]}',
                 f'{((rows * m - 1).abs().max().item()):.1e} (relative)')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument('--iters', type=int, default=50)
    parser.add_argument('--feature-dim', type=int, default=32)
    parser.add_argument('--prompts', type=int, nargs='+', default=[4, 8])
    args = parser.parse_args()
    device = torch.device(args.device)
    report = Report('Sinkhorn: ours vs reference loop vs POT', device)
    if args.small:
        batch, k_test, k_train, m = 2, 21, 16, 256
    else:
        batch, k_test, k_train, m = 4, 171, 156, 1024
    for n in args.prompts:
        print(f'-- N = {n} prompts, M = {m}, eps = {EPS}, '
              f'{args.iters} iterations')
        print(f'   forward (inference, K = {k_test})')
        scores = make_scores(batch, k_test, m, n, args.feature_dim, device)
        forward_section(report, scores, args.iters, args, device)
        print(f'   forward+backward (training, K = {k_train})')
        scores = make_scores(batch, k_train, m, n, args.feature_dim, device,
                             seed=1)
        backward_section(report, scores, args.iters, args, device)
        accuracy_curve(report, scores, (5, 10, 20, 30, 50, 75, 100))
    return report.finish()


if __name__ == '__main__':
    sys.exit(main())
