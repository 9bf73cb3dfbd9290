# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The mixin of every module wrapping a frozen open_clip tower."""
from collections.abc import Mapping
from typing import Union

import torch
from mmengine.logging import print_log
from open_clip.transformer import QuickGELU
from torch import Tensor, nn

from .clip_build import check_quick_gelu
from .clip_checkpoint import is_openai_weights, load_clip_weights

__all__ = ['FrozenCLIPMixin']


class FrozenCLIPMixin:
    """What every module wrapping a frozen open_clip tower shares.

    * :meth:`load_frozen_clip` loads the tower strictly and checks QuickGELU
      for OpenAI weights; missing weights are an error, never a random CLIP.
      It then marks the module initialised through MMEngine's ``is_init``,
      as mmseg's pretrained backbones do (``TIMMBackbone``), so the tower is
      loaded once: a parent's ``BaseModule.init_weights`` only calls the
      ``init_weights`` of children that are not initialised. A parent's
      ``init_cfg`` cannot re-initialise CLIP in MMEngine's order either: a
      parent applies its ``init_cfg`` to its whole tree *before* it calls
      its children's ``init_weights``, so one top-level ``init_weights()``
      (the Runner's) loads CLIP after any ``init_cfg`` above it. A direct
      call of ``init_weights()`` always (re)loads.
    * The activation is recorded in the state dict (extra state), so a
      checkpoint cannot meet a model built with the other one, e.g. when the
      ``pretrained`` file that auto-detection reads is absent at test time.

    Put it before ``BaseModule`` in the bases and call :meth:`freeze_clip` in
    ``__init__``. ``cfg_key`` names the module in configs, for messages.
    """

    cfg_key = 'model'

    def freeze_clip(self, tower: nn.Module) -> None:
        """Freeze ``tower`` (no gradients, eval mode) and record whether it
        was built with QuickGELU."""
        tower.requires_grad_(False)
        tower.eval()
        self._uses_quick_gelu = any(
            isinstance(module, QuickGELU) for module in tower.modules())

    def load_frozen_clip(self, tower: nn.Module, tower_name: str) -> None:
        """Load ``tower`` ('visual' or 'text') from ``self.pretrained``.

        Raises:
            ValueError: If ``pretrained`` is None, the file cannot be loaded
                into this architecture, or OpenAI weights meet a GELU build.
        """
        if self.pretrained is None:
            raise ValueError(
                f'{type(self).__name__}.init_weights() needs CLIP weights (a '
                f'random CLIP is never used silently): set '
                f'`{self.cfg_key}.pretrained` to a local CLIP checkpoint file '
                '(nothing can be downloaded).')
        load_clip_weights(tower, self.pretrained, model_name=self.model_name,
                          tower=tower_name)
        if is_openai_weights(self.pretrained, self.model_name):
            check_quick_gelu(tower)
        print_log(
            f'{type(self).__name__}: loaded the {self.model_name} '
            f'{tower_name} tower from {self.pretrained}.', logger='current')
        self.is_init = True

    def get_extra_state(self) -> Tensor:
        """Record the activation, so a checkpoint cannot meet another one.

        Returns:
            Tensor: A 0-dim bool tensor, True for QuickGELU. A tensor, not a
            Python value: MMEngine broadcasts every state-dict entry from
            rank 0 after ``init_weights()`` in distributed training, and
            that only works for tensors.
        """
        return torch.tensor(self._uses_quick_gelu)

    def set_extra_state(self, state: Union[Tensor, Mapping]) -> None:
        """Refuse a checkpoint made with the other activation.

        Args:
            state (Tensor | Mapping): :meth:`get_extra_state`'s tensor, or
                ``{'quick_gelu': bool}`` as earlier versions saved it.

        Raises:
            ValueError: If the checkpoint's ``quick_gelu`` differs from this
                model's, naming the config key that fixes it.
        """
        quick_gelu = bool(state['quick_gelu'] if isinstance(state, Mapping)
                          else state)
        if quick_gelu != self._uses_quick_gelu:
            raise ValueError(
                f'The checkpoint was made with quick_gelu={quick_gelu} but '
                f'this {type(self).__name__} was built with quick_gelu='
                f'{self._uses_quick_gelu}. Set `{self.cfg_key}.quick_gelu='
                f'{quick_gelu}` (auto-detection needs the pretrained file, '
                'which may be absent here).')
