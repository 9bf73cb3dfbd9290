# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""What the dataset checker found: errors, warnings and each dataset's
counts."""
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np
from mmengine.config import ConfigDict
from mmseg.datasets import BaseSegDataset

#: The data loaders a config may have, in the order they are checked.
LOADER_SPLITS = ('train', 'val', 'test')
#: How many offending files an error message lists.
MAX_LISTED = 5


@dataclass
class Report:
    """The errors (the check fails) and warnings found so far."""
    errors: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    def error(self, message: str, fix: Optional[str] = None) -> None:
        """Record an error, and how to fix it."""
        self.errors.append(message + (f'\n     Fix: {fix}.' if fix else ''))

    def warn(self, message: str) -> None:
        """Record a warning."""
        self.warnings.append(message)


@dataclass
class Checked:
    """One dataset (no wrapper) and what was found in it.

    ``class_images`` (K,) counts the sampled label files holding each class.
    """
    split: str
    key: str
    cfg: ConfigDict
    kind: Optional[str] = None
    dataset: Optional[BaseSegDataset] = None
    num_listed: int = 0
    missing_images: int = 0
    missing_labels: int = 0
    sampled: int = 0
    bad_labels: int = 0
    class_images: Optional[np.ndarray] = None


def listed(paths: Sequence[str], total: int) -> str:
    """The first :data:`MAX_LISTED` paths, one per line, and how many more."""
    lines = [f'\n       {path}' for path in paths[:MAX_LISTED]]
    if len(paths) > MAX_LISTED:
        lines.append(f'\n       ... and {len(paths) - MAX_LISTED} more')
    return f'{len(paths)} of {total}:' + ''.join(lines)
