# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Local files that are either their old version or the complete new one.

A process killed while it writes a file (SIGKILL, out of memory, a node
taken away) leaves a truncated file behind when the file is written in
place, which is what ``torch.save(obj, path)`` and MMEngine's
``LocalBackend.put`` do. :func:`atomic_write` writes to a temporary file in
the same folder, flushes it to disk (``fsync``) and renames it over the
target (``os.replace``, atomic on POSIX and Windows): a reader sees the old
file or the new one, never a part. :func:`atomic_torch_save` is
``torch.save`` through it.
"""
import io
import os
import os.path as osp
import re
import uuid
from pathlib import Path
from typing import Any, List, Union

import torch

__all__ = ['atomic_torch_save', 'atomic_write', 'remove_stale_temp_files']

#: Temporary files of :func:`atomic_write`: ``.<name>.<8 hex digits>.tmp``.
TEMP_FILE_PATTERN = re.compile(r'^\..+\.[0-9a-f]{8}\.tmp$')


def atomic_write(filepath: Union[str, Path], data: bytes) -> None:
    """Replace ``filepath`` by ``data`` atomically and durably.

    The bytes go to ``.<name>.<random>.tmp`` next to ``filepath``, are
    flushed to disk, and the temporary file is renamed over ``filepath``;
    the folder entry is flushed too. If anything fails before the rename,
    the temporary file is removed and ``filepath`` is untouched. A process
    killed before the rename leaves ``filepath`` untouched and the
    temporary file behind (see :func:`remove_stale_temp_files`).

    Args:
        filepath (str | Path): The file to write. Missing folders are made.
        data (bytes): Its new content.
    """
    filepath = osp.abspath(os.fspath(filepath))
    folder, name = osp.split(filepath)
    os.makedirs(folder, exist_ok=True)
    temp = osp.join(folder, f'.{name}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        with open(temp, 'xb') as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, filepath)
    except BaseException:
        if osp.exists(temp):
            os.remove(temp)
        raise
    if os.name == 'posix':  # make the rename itself durable
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def remove_stale_temp_files(folder: Union[str, Path]) -> List[str]:
    """Delete the temporary files that killed :func:`atomic_write` calls left
    in ``folder``; return their paths. Only for a folder no other process is
    writing to at the same time."""
    if not osp.isdir(folder):
        return []
    stale = [osp.join(folder, name) for name in sorted(os.listdir(folder))
             if TEMP_FILE_PATTERN.match(name)]
    for path in stale:
        os.remove(path)
    return stale


def atomic_torch_save(obj: Any, filepath: Union[str, Path]) -> None:
    """``torch.save(obj, filepath)``, atomically (:func:`atomic_write`):
    the file is serialised in memory first, so an error or a kill while
    saving leaves the previous ``filepath`` untouched."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(filepath, buffer.getvalue())
