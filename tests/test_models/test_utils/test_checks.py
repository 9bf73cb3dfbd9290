# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Config value checks whose errors name the key."""
import pytest

from mmseg_zegot.models.utils.checks import check_choice, check_number


def test_check_number():
    assert check_number('0.5', 'w', 0.0, 1.0) == 0.5
    for bad in (1.5, -0.1, float('nan'), None, 'x'):
        with pytest.raises(ValueError, match=r'w must lie in \[0.0, 1.0\]'):
            check_number(bad, 'w', 0.0, 1.0)


def test_check_choice():
    check_choice('a', 'key', ('a', 'b'))
    check_choice(False, 'flag', (True, False))
    for value, allowed in (('c', ('a', 'b')), (1, (True, False)),
                           (True, ('a', 'b')), ([1], ('a', ))):
        with pytest.raises(ValueError, match='key must be one of'):
            check_choice(value, 'key', allowed)
