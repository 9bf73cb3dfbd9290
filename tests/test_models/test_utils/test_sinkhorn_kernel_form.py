# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The solver's fast paths: the kernel (scaling) form chosen by
``cost_spread`` and the fused triton kernel (run here under triton's CPU
interpreter). Both must give the log-domain iterates up to rounding."""
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from conftest import RecordOps

from mmseg_zegot.models.utils.sinkhorn import KERNEL_FORM_MAX_RANGE, sinkhorn
from mmseg_zegot.utils.benchmark import saved_bytes

P, M, N = 6, 64, 4
EPS = 0.05


def cosine_cost(p=P, m=M, n=N, dim=8, seed=0):
    """``1 - cos`` of random unit vectors: (p, m, n) costs of spread <= 2."""
    gen = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(p, m, dim, generator=gen), dim=-1)
    y = F.normalize(torch.randn(p, n, dim, generator=gen), dim=-1)
    return 1 - x @ y.transpose(-1, -2)


def scaled_diff(plan, ref):
    """``max |plan - ref| * M * N``: the error on the scale of a uniform
    plan rescaled to all ones (what the head's refined score sees)."""
    m, n = ref.shape[-2:]
    return ((plan.double() - ref.double()).abs().max() * m * n).item()


def converged_f64(cost, eps):
    """Independent float64 reference: scaling iterations to convergence."""
    kernel = torch.exp(-cost.double() / eps)
    m, n = cost.shape[-2:]
    col = torch.ones(cost.shape[0], n, dtype=torch.float64)
    for _ in range(20000):
        row = (1.0 / m) / torch.einsum('pmn,pn->pm', kernel, col)
        col = (1.0 / n) / torch.einsum('pmn,pm->pn', kernel, row)
        plan = row[:, :, None] * kernel * col[:, None, :]
        if (plan.sum(-1) - 1.0 / m).abs().max() < 1e-13:
            return plan
    raise AssertionError('float64 reference did not converge')


def test_kernel_form_gives_the_log_domain_iterates():
    cost = cosine_cost()
    for iters in (1, 7, 50):
        log64 = sinkhorn(cost.double(), EPS, iters)
        kernel64 = sinkhorn(cost.double(), EPS, iters, cost_spread=2.0)
        assert scaled_diff(kernel64, log64) < 1e-10, iters
        kernel32 = sinkhorn(cost, EPS, iters, cost_spread=2.0)
        assert kernel32.dtype == torch.float32
        assert scaled_diff(kernel32, log64) < 1e-5, iters
    # And at convergence, the independent float64 solution.
    ref = converged_f64(cost, EPS)
    assert scaled_diff(sinkhorn(cost, EPS, 300, cost_spread=2.0), ref) < 1e-5


def test_cost_spread_selects_the_form():
    cost = cosine_cost(seed=1)
    with RecordOps() as rec:
        sinkhorn(cost, EPS, 3, cost_spread=2.0)
    assert not any('logsumexp' in op for op in rec.ops)
    # Beyond the safe range (2 / 0.03 > 50 in float32), or without a bound,
    # the log domain runs: exactly the default computation.
    assert 2.0 / 0.03 > KERNEL_FORM_MAX_RANGE[torch.float32]
    with RecordOps() as rec:
        plan = sinkhorn(cost, 0.03, 3, cost_spread=2.0)
    assert any('logsumexp' in op for op in rec.ops)
    assert torch.equal(plan, sinkhorn(cost, 0.03, 3))
    # float64 has a wider safe range.
    with RecordOps() as rec:
        sinkhorn(cost.double(), 0.03, 3, cost_spread=2.0)
    assert not any('logsumexp' in op for op in rec.ops)


@pytest.mark.parametrize('case', ['binary', 'far_column', 'one_pixel'])
def test_kernel_form_is_safe_at_the_range_limit(case):
    # Costs of spread exactly 2 with eps = 2 / 50: the most extreme kernel
    # the float32 kernel form accepts (entries down to exp(-50)).
    gen = torch.Generator().manual_seed(2)
    if case == 'binary':  # every entry 0 or 2
        cost = 2.0 * (torch.rand(P, M, N, generator=gen) < 0.5).float()
    elif case == 'far_column':  # prompt 0 is far from every pixel
        cost = torch.zeros(P, M, N)
        cost[..., 0] = 2.0
    else:  # prompt 0 is near a single pixel only
        cost = torch.full((P, M, N), 2.0)
        cost[..., 1:] = 0.0
        cost[:, 0, 0] = 0.0
    eps = 2.0 / KERNEL_FORM_MAX_RANGE[torch.float32]
    plan = sinkhorn(cost, eps, 50, cost_spread=2.0)
    assert torch.isfinite(plan).all() and (plan >= 0).all()
    assert (plan.sum(-2) - 1.0 / N).abs().max() < 1e-6
    assert scaled_diff(plan, sinkhorn(cost.double(), eps, 50)) < 1e-5


def test_unrolled_gradients_match_the_log_domain():
    gen = torch.Generator().manual_seed(3)
    cost = (2 * torch.rand(2, 5, 3, generator=gen, dtype=torch.float64)
            ).requires_grad_(True)

    def kernel_form(c):
        return sinkhorn(c, 0.3, 8, 'unrolled', cost_spread=2.0)

    assert torch.autograd.gradcheck(kernel_form, (cost, ), eps=1e-6,
                                    atol=1e-7)
    cost = cosine_cost(seed=4).requires_grad_(True)
    weights = torch.randn(cost.shape, generator=gen)
    grads = []
    for spread in (None, 2.0):
        plan = sinkhorn(cost, EPS, 20, 'unrolled', cost_spread=spread)
        (grad, ) = torch.autograd.grad((plan * weights).sum() * M * N, cost)
        grads.append(grad)
    assert (grads[0] - grads[1]).abs().max() < 1e-4 * grads[0].abs().max()


def test_unrolled_kernel_form_saves_one_kernel_not_one_per_iteration():
    cost = cosine_cost(seed=5).requires_grad_(True)
    cost_bytes = cost.numel() * cost.element_size()
    vector_bytes = P * (M + N) * 4  # one row and one column scaling

    def saved(iters, spread):
        return saved_bytes(lambda: sinkhorn(cost, EPS, iters, 'unrolled',
                                             cost_spread=spread))

    per_iter = (saved(100, 2.0) - saved(50, 2.0)) / 50
    fixed = saved(50, 2.0) - 50 * per_iter
    # Each iteration keeps scalings only; the kernel and the final product
    # are kept once.
    assert 0 < per_iter <= 3 * vector_bytes
    assert fixed <= 3 * cost_bytes
    # The log domain keeps full (P, M, N) tensors in every iteration.
    assert (saved(100, None) - saved(50, None)) / 50 > 2 * cost_bytes
    assert saved_bytes(lambda: sinkhorn(cost, EPS, 50, cost_spread=2.0)) == 0


def test_kernel_form_has_no_host_sync_and_fixed_work():
    cost = cosine_cost(seed=6).requires_grad_(True)
    counts = []
    for iters in (3, 6, 9):
        with RecordOps() as rec:
            plan = sinkhorn(cost, EPS, iters, 'unrolled', cost_spread=2.0)
        counts.append(len(rec.ops))
        with RecordOps() as backward:
            plan.sum().backward()
        for ops in (rec.ops, backward.ops):  # .item(), bool(tensor), ...
            assert not any('_local_scalar_dense' in op for op in ops)
    assert counts[2] - counts[1] == counts[1] - counts[0] > 0


@pytest.mark.parametrize('spread', [-1.0, float('inf'), float('nan'), 'x',
                                    True])
def test_bad_cost_spread(spread):
    with pytest.raises(ValueError, match='cost_spread'):
        sinkhorn(cosine_cost(), cost_spread=spread)


_INTERPRETED = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from mmseg_zegot.models.utils import sinkhorn_triton
    from mmseg_zegot.models.utils.sinkhorn import sinkhorn

    gen = torch.Generator().manual_seed(7)
    assert sinkhorn_triton.supports(2048, 8)
    assert not sinkhorn_triton.supports(2049, 8)
    for p, m, n, dtype in ((3, 64, 4, torch.float32),
                           (2, 37, 5, torch.float16),
                           (2, 1, 1, torch.bfloat16),
                           (0, 8, 4, torch.float32)):
        x = F.normalize(torch.randn(p, m, 8, generator=gen), dim=-1)
        y = F.normalize(torch.randn(p, n, 8, generator=gen), dim=-1)
        cost = (1 - x @ y.transpose(1, 2)).to(dtype)
        for iters in (1, 20):
            fused = sinkhorn_triton.fused_sinkhorn(cost, 0.05, iters)
            ref = sinkhorn(cost.double(), 0.05, iters)
            assert fused.dtype == torch.float32 and fused.shape == cost.shape
            diff = (fused.double() - ref).abs().max().item() if p else 0.0
            assert diff * m * n < 1e-5, (p, m, n, dtype, iters, diff)
    print('fused kernel OK')
''')


def test_fused_triton_kernel_under_the_interpreter():
    pytest.importorskip('triton')
    env = dict(os.environ, TRITON_INTERPRET='1')
    result = subprocess.run([sys.executable, '-W', 'error::RuntimeWarning',
                             '-c', _INTERPRETED], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert 'fused kernel OK' in result.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_fused_path_on_cuda_matches_and_never_syncs():
    pytest.importorskip('triton')
    cost = cosine_cost(p=64, m=1024, n=4, dim=32, seed=8).cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        plan = sinkhorn(cost, EPS, 50, cost_spread=2.0)
    finally:
        torch.cuda.set_sync_debug_mode('default')
    ref = sinkhorn(cost.double().cpu(), EPS, 50)
    assert scaled_diff(plan.cpu(), ref) < 1e-5
    assert math.isclose(plan.sum().item(), 64, rel_tol=1e-5)
