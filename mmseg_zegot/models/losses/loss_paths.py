# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Build the loss modules of a head's prediction paths."""
from typing import Sequence, Tuple, Union

from mmseg.registry import MODELS
from torch import nn

LossCfgs = Union[dict, Sequence[dict]]


def build_loss_paths(**paths: LossCfgs) -> Tuple[nn.ModuleList, ...]:
    """One ``nn.ModuleList`` of losses per path, in the order given.

    Args:
        **paths (dict | Sequence[dict]): Per config key (e.g.
            ``loss_decode``), a loss config or a list of them.

    Returns:
        tuple[nn.ModuleList]: The built losses of each path.

    Raises:
        ValueError: If a ``loss_name`` does not start with ``'loss_'`` (MMEngine
            would not back-propagate it) or is used twice across the paths.
    """
    built = tuple(
        nn.ModuleList(
            MODELS.build(cfg)
            for cfg in ([cfgs] if isinstance(cfgs, dict) else cfgs))
        for cfgs in paths.values())
    names = [loss.loss_name for losses in built for loss in losses]
    bad = [name for name in names if not name.startswith('loss_')]
    if bad or len(set(names)) != len(names):
        raise ValueError(
            f'The loss_name of every {" and ".join(paths)} entry must start '
            "with 'loss_' (else it is not back-propagated) and be unique "
            f'across the paths, got {names}')
    return built
