# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""MMEngine's local file backend with atomic writes.

:class:`ZegOTAtomicLocalBackend` is MMEngine's local backend whose
``put``/``put_text`` go through :func:`~mmseg_zegot.utils.atomic_io.atomic_write`
(temporary file, ``fsync``, rename: a reader sees the old file or the new
one, never a part), registered under the backend name
``'zegot_atomic_local'`` (``backend_args=dict(backend='zegot_atomic_local')``);
it replaces nothing globally.
:class:`~mmseg_zegot.engine.hooks.ZegOTCheckpointHook` saves through it.
"""
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from mmseg_zegot.utils.atomic_io import atomic_write

#: Name of :class:`ZegOTAtomicLocalBackend` in MMEngine's backend registry.
ATOMIC_BACKEND = 'zegot_atomic_local'


@register_backend(ATOMIC_BACKEND)
class ZegOTAtomicLocalBackend(LocalBackend):
    """MMEngine's ``LocalBackend`` whose writes are atomic (:func:`atomic_write`).

    Reads, listing and removal are ``LocalBackend``'s.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write ``obj`` to ``filepath`` atomically."""
        atomic_write(filepath, obj)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write the text ``obj`` to ``filepath`` atomically."""
        atomic_write(filepath, obj.encode(encoding))
