# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Learnable multi-prompt CLIP text encoder of ZegOT.

Shape shorthand: K classes in the current vocabulary, N prompts, L learnable
tokens per prompt, E text width, C joint CLIP width, T sequence length after
the EOT cut.
"""
import logging
from typing import Optional, Sequence, Tuple, Union

import open_clip
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor, nn

from mmseg_zegot.models.utils.clip_build import build_clip
from mmseg_zegot.models.utils.frozen_clip import FrozenCLIPMixin


@MODELS.register_module()
class ZegOTPromptTextEncoder(FrozenCLIPMixin, BaseModule):
    """Frozen CLIP text tower fed with N learnable prompt contexts.

    ZegOT (Kim, Oh and Ye, "ZegOT: Zero-shot Segmentation Through Optimal
    Transport of Text Prompts", arXiv 2301.12171) describes every class by N
    text prompts. As in CoOp/PLOT (Zhou et al. 2022; Chen et al. 2023), the
    prompts are learnable contexts ``ctx`` (N×L×E) shared by all classes, so
    they transfer to class names never seen in training. The sequence of class
    k and prompt n is::

        [SOT] ctx_n (L embeddings) <tokens of "name_k."> [EOT]

    run through the frozen open_clip text transformer; the EOT token after
    ``ln_final`` and ``text_projection`` is the embedding t[k, n] (C).

    Only ``contexts`` is trainable. Sequences are cut after the longest EOT
    position of the vocabulary, which is exact under CLIP's causal mask. In
    eval mode the K×N×C result is computed once per vocabulary and cached; the
    cache is dropped when the vocabulary changes, on ``train()``/``eval()``,
    ``load_state_dict()`` and ``init_weights()``, and whenever ``contexts``
    changes in place (its version counter and storage are part of the key).

    Args:
        model_name (str): open_clip model name of the CLIP to wrap; it also
            selects the tokenizer. Default: 'ViT-B-16'.
        pretrained (str, optional): Local CLIP checkpoint file, loaded by
            :meth:`init_weights`. Default: None.
        model_cfg (dict | str, optional): open_clip model config (inline, or
            a JSON file path) used instead of ``model_name``'s; the
            tokenizer is then open_clip's ``SimpleTokenizer`` (the CLIP BPE
            vocabulary) with the config's context length. Default: None.
        quick_gelu (bool, optional): Force QuickGELU on or off (OpenAI
            weights need it); None lets :func:`build_clip` decide.
        num_prompts (int): N, the number of prompts per class. Default: 4.
        prompt_length (int): L, learnable tokens per prompt. Default: 16.
        prompt_init_std (float): Std of the normal init of the contexts.
            Default: 0.02.
        template (str): How a class name is written after the context, with
            one ``{}`` for the name. Default: ``'{}.'`` (the name and a full
            stop); ``'a photo of a {}.'`` with ``prompt_length=0`` gives
            CLIP's plain zero-shot prompt.
        vocabulary (Sequence[str], optional): Initial class names; can be set
            later with :meth:`set_vocabulary`. Default: None.
        init_cfg (None): Not supported: the module initialises itself from
            ``pretrained`` in :meth:`init_weights`.
    """

    cfg_key = 'model.text_encoder'

    def __init__(self,
                 model_name: str = 'ViT-B-16',
                 pretrained: Optional[str] = None,
                 model_cfg: Union[dict, str, None] = None,
                 quick_gelu: Optional[bool] = None,
                 num_prompts: int = 4,
                 prompt_length: int = 16,
                 prompt_init_std: float = 0.02,
                 template: str = '{}.',
                 vocabulary: Optional[Sequence[str]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is not None:
            raise ValueError(
                'ZegOTPromptTextEncoder does not support `init_cfg` (got '
                f'{init_cfg!r}): it loads CLIP from `pretrained` and '
                'initialises its contexts in init_weights().')
        super().__init__()
        for key, value in (('num_prompts', num_prompts),
                           ('prompt_length', prompt_length)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(
                    f'`{key}` must be an integer, got {value!r}.')
        if num_prompts < 1:
            raise ValueError(f'`num_prompts` (N) must be >= 1, got '
                             f'{num_prompts}.')
        clip = build_clip(model_name, model_cfg=model_cfg,
                          quick_gelu=quick_gelu, pretrained=pretrained)
        del clip.visual
        if clip.text_pool_type not in ('argmax', 'eos'):
            raise ValueError(
                'ZegOTPromptTextEncoder pools the EOT token, so the CLIP text '
                "tower needs text_cfg.pool_type 'argmax' or 'eos', got "
                f'{clip.text_pool_type!r} (model {model_name!r}).')
        if clip.attn_mask is None:
            raise ValueError(
                'ZegOTPromptTextEncoder needs a causal text transformer, but '
                f'model {model_name!r} sets text_cfg.no_causal_mask=True.')
        max_length = clip.context_length - 3
        if not 0 <= prompt_length <= max_length:
            raise ValueError(
                f'`prompt_length` must be in [0, {max_length}] (context_length '
                f'{clip.context_length} minus SOT, one name token and EOT), '
                f'got {prompt_length}.')
        self.freeze_clip(clip)
        self.clip = clip
        if model_cfg is None:
            self.tokenizer = open_clip.get_tokenizer(
                model_name, context_length=clip.context_length)
        else:
            self.tokenizer = open_clip.SimpleTokenizer(
                context_length=clip.context_length)

        self.model_name = model_name
        self.pretrained = pretrained
        self.prompt_init_std = prompt_init_std
        if not isinstance(template, str) or template.count('{}') != 1:
            raise ValueError(
                "`template` must be a string with one '{}' for the class "
                f'name, got {template!r}.')
        self.template = template
        width = clip.token_embedding.embedding_dim
        self.contexts = nn.Parameter(
            torch.empty(num_prompts, prompt_length, width))
        nn.init.normal_(self.contexts, std=prompt_init_std)

        # Name-dependent, rebuilt by set_vocabulary(): never in a checkpoint.
        self.register_buffer('token_ids', torch.zeros(0, 0, dtype=torch.long),
                             persistent=False)  # K×T0, T0 = T - L
        self.register_buffer('eot_index', torch.zeros(0, dtype=torch.long),
                             persistent=False)  # K, in token_ids
        self._vocabulary: Tuple[str, ...] = ()
        self._cache: Optional[Tuple[tuple, Tensor]] = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    @property
    def num_prompts(self) -> int:
        """N, the number of prompts per class."""
        return self.contexts.shape[0]

    @property
    def prompt_length(self) -> int:
        """L, the number of learnable tokens per prompt."""
        return self.contexts.shape[1]

    @property
    def width(self) -> int:
        """E, the width of the text transformer."""
        return self.contexts.shape[2]

    @property
    def output_dims(self) -> int:
        """C, the width of the returned embeddings."""
        projection = self.clip.text_projection
        if projection is None:
            return self.width
        if isinstance(projection, nn.Linear):
            return projection.out_features
        return projection.shape[1]

    @property
    def vocabulary(self) -> Tuple[str, ...]:
        """The class names whose embeddings :meth:`forward` returns."""
        return self._vocabulary

    def set_vocabulary(self, class_names: Sequence[str]) -> None:
        """Tokenize the class names and rebuild the name-dependent buffers.

        Each name becomes ``template.format(name)`` (``"{name}."`` by
        default), after the prompt context. Names longer than the
        ``context_length - L - 2`` tokens that fit are truncated (the EOT is
        kept) with a warning.

        Args:
            class_names (Sequence[str]): The K class names, unique and
                non-empty.
        """
        if isinstance(class_names, str) or not class_names:
            raise ValueError(
                '`vocabulary` must be a non-empty sequence of class names, '
                f'got {class_names!r}.')
        names = tuple(class_names)
        seen = set()
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise ValueError(
                    f'`vocabulary` holds an empty or non-string class name: '
                    f'{name!r}.')
            if name in seen:
                raise ValueError(
                    f'`vocabulary` holds the class {name!r} more than once.')
            seen.add(name)

        ids = self.tokenizer([self.template.format(name) for name in names])
        eot = self._eot_positions(ids)
        max_eot = self.clip.context_length - self.prompt_length - 1
        for k in torch.nonzero(eot > max_eot).flatten().tolist():
            print_log(
                f'ZegOTPromptTextEncoder: class {names[k]!r} takes '
                f'{int(eot[k]) - 1} tokens (with the template); only '
                f'{max_eot - 1} fit in context_length '
                f'{self.clip.context_length} with prompt_length '
                f'{self.prompt_length}, so the name is truncated.',
                logger='current', level=logging.WARNING)
            ids[k, max_eot] = ids[k, eot[k]]
            eot[k] = max_eot
        device = self.contexts.device
        self.token_ids = ids[:, :int(eot.max()) + 1].to(device)
        self.eot_index = eot.to(device)
        self._vocabulary = names
        self._cache = None

    def _eot_positions(self, ids: Tensor) -> Tensor:
        """EOT positions of tokenized text, the way open_clip pools them.

        Args:
            ids (Tensor): K×context_length token ids.

        Returns:
            Tensor: K positions (long).
        """
        if self.clip.text_pool_type == 'argmax':
            return ids.argmax(dim=-1)
        is_eos = ids == self.clip.text_eos_id
        if not is_eos.any(dim=-1).all():
            raise ValueError(
                f'text_cfg.eos_id={self.clip.text_eos_id} of model '
                f'{self.model_name!r} is not the EOT token of its tokenizer, '
                "so text_cfg.pool_type='eos' finds no EOT to pool.")
        return is_eos.int().argmax(dim=-1)

    def forward(self) -> Tensor:
        """Embed every (class, prompt) pair of the current vocabulary.

        In train mode the result is recomputed with autograd to
        ``contexts``; in eval mode it is a cached constant (no graph).

        Returns:
            Tensor: K×N×C L2-normalised text embeddings.
        """
        if not self._vocabulary:
            raise ValueError(
                'ZegOTPromptTextEncoder has no vocabulary: pass `vocabulary` '
                'or call set_vocabulary() before forward().')
        if self.training:
            return self._encode()
        device_type = self.contexts.device.type
        key = (self.contexts._version, self.contexts.data_ptr(),
               torch.is_autocast_enabled(device_type),
               torch.get_autocast_dtype(device_type))
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, self._encode())
        return self._cache[1]

    def _encode(self) -> Tensor:
        """Run the K·N prompt sequences through the frozen text tower.

        Returns:
            Tensor: K×N×C L2-normalised text embeddings.
        """
        clip = self.clip
        num_classes, num_tokens = self.token_ids.shape
        n, length = self.contexts.shape[:2]
        cast_dtype = clip.transformer.get_cast_dtype()

        tokens = clip.token_embedding(self.token_ids).to(cast_dtype)
        tokens = tokens[:, None].expand(-1, n, -1, -1)  # K×N×T0×E
        contexts = self.contexts.to(cast_dtype)[None].expand(
            num_classes, -1, -1, -1)  # K×N×L×E
        x = torch.cat([tokens[:, :, :1], contexts, tokens[:, :, 1:]], dim=2)
        x = x.flatten(0, 1)  # KN×T×E
        seq_len = num_tokens + length
        x = x + clip.positional_embedding[:seq_len].to(cast_dtype)
        x = clip.transformer(x, attn_mask=clip.attn_mask[:seq_len, :seq_len])

        eot = (self.eot_index + length).repeat_interleave(n)  # KN
        x = clip.ln_final(x[torch.arange(x.shape[0], device=x.device), eot])
        projection = clip.text_projection
        if isinstance(projection, nn.Linear):
            x = projection(x)
        elif projection is not None:
            x = x @ projection
        # Normalised in float32: under fp16 autocast F.normalize's eps
        # (1e-12) rounds to 0, so a zero vector would give 0/0 = NaN.
        x = F.normalize(x.float(), dim=-1).to(x.dtype)
        return x.view(num_classes, n, -1)

    def train(self, mode: bool = True) -> 'ZegOTPromptTextEncoder':
        """Set the mode (the CLIP tower stays in eval) and drop the cache."""
        super().train(mode)
        self.clip.eval()
        self._cache = None
        return self

    def init_weights(self) -> None:
        """Re-initialise the contexts and load the CLIP text tower weights.

        Raises:
            ValueError: If ``pretrained`` is None, the file cannot be loaded
                into this architecture, or OpenAI weights meet a GELU build.
        """
        nn.init.normal_(self.contexts, std=self.prompt_init_std)
        self.load_frozen_clip(self.clip, 'text')
        self._cache = None

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        """Drop the cache whenever a state dict is loaded."""
        self._cache = None
        super()._load_from_state_dict(*args, **kwargs)
