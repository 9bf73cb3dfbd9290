# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""A pure-PyTorch stand-in for ``mmcv.ops`` on mmcv-lite.

mmsegmentation 1.2.2 imports ``point_sample`` and ``sigmoid_focal_loss`` from
``mmcv.ops`` without a guard, so on mmcv-lite (no compiled ``mmcv._ext``)
``import mmseg.models`` fails. :func:`install_mmcv_ops_fallback` registers a
small module as ``mmcv.ops`` that provides those two functions in plain
PyTorch and raises ``ModuleNotFoundError`` for every other op, which is the
exception mmseg's optional imports (``CrissCrossAttention``, ``PSAMask``, ...)
already catch. It is installed only when the compiled ops are missing, so a
real mmcv is never shadowed.

Shapes: N samples/points, C classes or channels, P points.
"""
import importlib.util
import sys
import types
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

#: mmsegmentation 1.2.x accepts mmcv in [MMCV_MIN, MMCV_MAX).
MMCV_MIN = '2.0.0rc4'
MMCV_MAX = '2.2.0'
FALLBACK_MODULE_NAME = 'mmcv.ops'


def check_mmcv_version(version: str) -> None:
    """Raise a clear ``ImportError`` for an mmcv outside mmseg 1.2's range.

    Args:
        version (str): ``mmcv.__version__``.
    """
    from mmengine.utils import digit_version
    if not (digit_version(MMCV_MIN) <= digit_version(version) <
            digit_version(MMCV_MAX)):
        raise ImportError(
            f'mmseg_zegot needs mmcv>={MMCV_MIN},<{MMCV_MAX} (the range '
            f'mmsegmentation 1.2.x supports), but mmcv {version} is '
            'installed. Fix: `pip install "mmcv-lite==2.1.0"` (pure Python, '
            'enough for mmseg_zegot), or build mmcv 2.1.0 with compiled ops '
            'as described in README.md ("Installation").')


def point_sample(input: Tensor,
                 points: Tensor,
                 align_corners: bool = False,
                 **kwargs) -> Tensor:
    """Sample ``input`` at normalised point coordinates (mmcv semantics).

    Args:
        input (Tensor): Feature map, (N, C, H, W).
        points (Tensor): Coordinates in ``[0, 1] x [0, 1]`` as (x, y),
            (N, P, 2) or (N, Hg, Wg, 2).
        align_corners (bool): Passed to :func:`F.grid_sample`.
        **kwargs: Other :func:`F.grid_sample` arguments (``mode``,
            ``padding_mode``).

    Returns:
        Tensor: (N, C, P) or (N, C, Hg, Wg).
    """
    add_dim = points.dim() == 3
    grid = points.unsqueeze(2) if add_dim else points
    output = F.grid_sample(
        input, grid * 2.0 - 1.0, align_corners=align_corners, **kwargs)
    return output.squeeze(3) if add_dim else output


def sigmoid_focal_loss(input: Tensor,
                       target: Tensor,
                       gamma: float = 2.0,
                       alpha: float = 0.25,
                       weight: Optional[Tensor] = None,
                       reduction: str = 'mean') -> Tensor:
    """Sigmoid focal loss with mmcv's ``sigmoid_focal_loss`` contract.

    Element-wise, with ``p = sigmoid(x)`` and ``t`` the one-hot target
    (a target equal to C marks a sample with no positive class)::

        loss = -alpha * t * (1 - p)^gamma * log(p)
               - (1 - alpha) * (1 - t) * p^gamma * log(1 - p)

    Args:
        input (Tensor): Logits, (N, C).
        target (Tensor): Class indices in ``[0, C]``, (N,), int64.
        gamma (float): Focusing parameter.
        alpha (float): Weight of the positive term.
        weight (Tensor, optional): Per-class weight (C,), applied to every
            element of a sample according to its target class, as mmcv does.
            Samples whose target is C get weight 1.
        reduction (str): ``'none'`` (N, C), ``'mean'`` (sum / N) or
            ``'sum'``.

    Returns:
        Tensor: The loss.
    """
    if reduction not in ('none', 'mean', 'sum'):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', "
                         f'got {reduction!r}')
    num_classes = input.size(1)
    one_hot = F.one_hot(target, num_classes + 1)[:, :num_classes]
    one_hot = one_hot.to(input.dtype)
    prob = input.sigmoid()
    pos = -alpha * (1 - prob).pow(gamma) * F.logsigmoid(input)
    neg = -(1 - alpha) * prob.pow(gamma) * F.logsigmoid(-input)
    loss = one_hot * pos + (1 - one_hot) * neg
    if weight is not None:
        padded = torch.cat([weight, weight.new_ones(1)])
        loss = loss * padded[target].unsqueeze(1)
    if reduction == 'mean':
        return loss.sum() / input.size(0)
    if reduction == 'sum':
        return loss.sum()
    return loss


def _missing_op(name: str):
    """Module ``__getattr__`` for the stand-in: unknown ops are missing."""
    if name.startswith('__') and name.endswith('__'):
        raise AttributeError(name)
    raise ModuleNotFoundError(
        f'mmcv.ops.{name} needs mmcv compiled ops, but only mmcv-lite is '
        'installed (mmseg_zegot provides point_sample and sigmoid_focal_loss '
        'alone). Fix: build mmcv 2.1.0 with ops as described in README.md '
        '("Installation").')


def compiled_ops_available() -> bool:
    """Whether mmcv's compiled extension ``mmcv._ext`` is importable."""
    return importlib.util.find_spec('mmcv._ext') is not None


def install_mmcv_ops_fallback() -> bool:
    """Register the pure-PyTorch ``mmcv.ops`` stand-in if it is needed.

    Does nothing when mmcv's compiled ops exist, or when ``mmcv.ops`` was
    already imported (a real one, or our stand-in).

    Returns:
        bool: Whether the stand-in is (now) the active ``mmcv.ops``.
    """
    existing = sys.modules.get(FALLBACK_MODULE_NAME)
    if existing is not None:
        return bool(getattr(existing, '__mmseg_zegot_fallback__', False))
    if compiled_ops_available():
        return False
    import mmcv
    module = types.ModuleType(FALLBACK_MODULE_NAME, __doc__)
    module.__mmseg_zegot_fallback__ = True
    module.point_sample = point_sample
    module.sigmoid_focal_loss = sigmoid_focal_loss
    module.__getattr__ = _missing_op
    sys.modules[FALLBACK_MODULE_NAME] = module
    mmcv.ops = module
    return True
