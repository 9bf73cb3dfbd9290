# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Checks of config values whose errors name the config key."""
from typing import Sequence


def check_number(value, key: str, low: float, high: float) -> float:
    """``float(value)`` if it lies in ``[low, high]``, else a ValueError
    naming ``key``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float('nan')
    if not low <= number <= high:
        raise ValueError(f'{key} must lie in [{low}, {high}], got {value!r}')
    return number


def check_choice(value, key: str, allowed: Sequence) -> None:
    """A ValueError naming ``key`` unless ``value`` is one of ``allowed``
    (of the same kind: 1 is not True)."""
    if value not in allowed or isinstance(value, bool) != isinstance(
            allowed[0], bool):
        raise ValueError(f'{key} must be one of {tuple(allowed)}, got '
                         f'{value!r}')
