# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Projects built on mmseg_zegot, as mmseg keeps them: each with its own
package, configs, tools and tests, registered through its configs'
``custom_imports`` (importable from the repository root)."""
