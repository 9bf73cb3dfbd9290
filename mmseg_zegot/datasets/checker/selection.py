# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Which datasets of a config the checker reads, and building them."""
import copy
from collections.abc import Mapping
from typing import Any, Dict, Iterator, List, Optional, Tuple

from mmengine.config import ConfigDict
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from torch.utils.data import Dataset

from mmseg_zegot.utils.config import root_cause

from .advice import dataset_kind
from .report import LOADER_SPLITS, Checked, Report


def leaf_datasets(dataset: Any, key: str) -> Iterator[Tuple[str, Any]]:
    """The datasets inside ``ConcatDataset`` / ``RepeatDataset``-style
    wrappers, each with its config key (e.g.
    ``train_dataloader.dataset.datasets.1``).

    Args:
        dataset (Dataset | dict): A built dataset, or a dataset config: a
            wrapper holds a ``datasets`` list or a ``dataset``.
        key (str): The config key of ``dataset``.

    Yields:
        tuple[str, Dataset | dict]: Config key and dataset (or config) of
        every dataset that is no wrapper.
    """
    def member(name: str):
        return (dataset.get(name) if isinstance(dataset, Mapping) else
                getattr(dataset, name, None))

    inner = member('datasets')
    if isinstance(inner, (list, tuple)):
        for index, child in enumerate(inner):
            yield from leaf_datasets(child, f'{key}.datasets.{index}')
    elif isinstance(member('dataset'), (Dataset, Mapping)):
        yield from leaf_datasets(member('dataset'), f'{key}.dataset')
    else:
        yield key, dataset


def select_datasets(cfg, split: str,
                    report: Report) -> Tuple[List[Checked], List[str]]:
    """The datasets to check, and notes on what is skipped.

    Args:
        cfg (Config): The config.
        split (str): ``'train'``, ``'val'``, ``'test'`` or ``'all'``.
        report (Report): Gets an error for a missing data loader.
    """
    splits = LOADER_SPLITS if split == 'all' else (split, )
    chosen: Dict[str, ConfigDict] = {}
    checked, notes = [], []
    for name in splits:
        loader = cfg.get(f'{name}_dataloader') or {}
        dataset_cfg = loader.get('dataset')
        if not dataset_cfg:
            if split == 'all':
                notes.append(f'The config has no {name}_dataloader.dataset: '
                             'skipped.')
            else:
                report.error(f'The config has no {name}_dataloader.dataset.',
                             fix='choose another --split')
            continue
        same = [other for other, c in chosen.items() if c == dataset_cfg]
        if same:
            notes.append(f'{name}_dataloader.dataset is '
                         f'{same[0]}_dataloader.dataset: checked once.')
            continue
        chosen[name] = dataset_cfg
        for key, leaf in leaf_datasets(dataset_cfg,
                                       f'{name}_dataloader.dataset'):
            checked.append(
                Checked(name, key, leaf, kind=dataset_kind(leaf.get('type'))))
    return checked, notes


def build_dataset(item: Checked,
                  report: Report) -> Optional[BaseSegDataset]:
    """The dataset, built from its config; None (and an error) on failure."""
    try:
        return DATASETS.build(copy.deepcopy(item.cfg))
    except (AssertionError, KeyError, OSError, TypeError,
            ValueError) as error:
        cause = root_cause(error)
        report.error(
            f'{item.key}: building {item.cfg.get("type")} failed: '
            f'{type(cause).__name__}: {cause}',
            fix=f'correct {item.key} in the config')
        return None
