# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Weights-only checkpoints: conversion, safe loading, refusal of unsafe
pickles, and the conversion tool."""
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

import mmseg_zegot.safe_loading  # noqa: F401  (the opt-in our tools use)
from mmseg_zegot.utils import (
    UnsafeCheckpointError,
    from_plain,
    load_checkpoint_safely,
    to_plain,
)

REPO = Path(__file__).resolve().parents[2]


def message_hub_like():
    buffer = HistoryBuffer()
    for value, count in [(0.5, 1), (0.25, 2), (np.float64(0.125), 1)]:
        buffer.update(value, count)
    return OrderedDict(
        meta=dict(iter=np.int64(4), dataset_meta=dict(classes=('a', 'b'))),
        message_hub=dict(
            log_scalars=OrderedDict({'train/lr': buffer}),
            runtime_info=dict(iter=4, arr=np.arange(6, dtype=np.int16)
                              .reshape(2, 3), scale=np.float32(2.5)),
            resumed_keys={'train/lr': True}),
        state_dict=OrderedDict(w=torch.arange(3.0)))


def test_round_trip_restores_objects(tmp_path):
    original = message_hub_like()
    path = tmp_path / 'plain.pth'
    torch.save(to_plain(original), path)
    loaded = torch.load(path, weights_only=True)
    restored = from_plain(loaded)
    buffer = restored['message_hub']['log_scalars']['train/lr']
    ref = original['message_hub']['log_scalars']['train/lr']
    assert isinstance(buffer, HistoryBuffer)
    np.testing.assert_array_equal(buffer.data[0], ref.data[0])
    np.testing.assert_array_equal(buffer.data[1], ref.data[1])
    assert buffer.mean() == ref.mean() and buffer.max_length == ref.max_length
    arr = restored['message_hub']['runtime_info']['arr']
    assert arr.dtype == np.int16 and arr.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert restored['meta']['iter'] == 4
    assert type(restored['meta']['iter']) is int
    assert isinstance(restored['state_dict'], OrderedDict)
    assert restored['meta']['dataset_meta']['classes'] == ('a', 'b')


def test_unknown_object_is_named_at_save():
    class Opaque:
        pass

    with pytest.raises(TypeError, match=r"checkpoint\['meta'\]\['x'\]"):
        to_plain({'meta': {'x': Opaque()}})


class Exploit:
    """Unpickling this runs a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': Exploit(marker)}, path)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_safely(str(path))
    assert 'tools/convert_checkpoint.py --trust' in str(info.value)
    # With the opt-in, MMEngine's loader (load_from, --resume) goes through us.
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint(str(path))
    assert not marker.exists()


def test_foreign_mmengine_checkpoint_message(tmp_path):
    path = tmp_path / 'foreign.pth'
    torch.save(message_hub_like(), path)  # numpy and HistoryBuffer inside
    with pytest.raises(UnsafeCheckpointError, match='weights_only=True'):
        load_checkpoint_safely(str(path))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_checkpoint_safely(str(tmp_path / 'nope.pth'))


def run_convert(*args):
    return subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'convert_checkpoint.py'),
         *map(str, args)], capture_output=True, text=True, timeout=300)


def test_convert_tool_needs_trust_then_converts(tmp_path):
    src, dst = tmp_path / 'foreign.pth', tmp_path / 'plain.pth'
    torch.save(message_hub_like(), src)
    refused = run_convert(src, dst)
    assert refused.returncode != 0 and '--trust' in refused.stderr
    assert not dst.exists()
    converted = run_convert('--trust', src, dst)
    assert converted.returncode == 0, converted.stderr
    loaded = from_plain(load_checkpoint_safely(str(dst)))
    torch.testing.assert_close(loaded['state_dict']['w'], torch.arange(3.0))
    assert isinstance(loaded['message_hub']['log_scalars']['train/lr'],
                      HistoryBuffer)
