# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""The library holds no toy world: ``import mmseg_zegot`` loads no module of
``projects/toy_world`` (nor a toy module of its own) and registers only the
benchmark splits; the project's package, imported as its configs'
``custom_imports`` do, registers its dataset and split."""
import json
import subprocess
import sys

from conftest import REPO

CODE = """
import json, sys
import mmseg_zegot
from mmseg.registry import DATASETS
from mmseg_zegot.datasets import SPLITS
state = dict(
    modules=sorted(m for m in sys.modules
                   if m.startswith('projects') or 'toy' in m),
    splits=sorted(SPLITS),
    dataset='ZegOTToyWorldDataset' in DATASETS.module_dict)
if 'project' in sys.argv:
    import projects.toy_world.toy_world
    import projects.toy_world.toy_world  # a second import changes nothing
    state.update(project_splits=sorted(SPLITS),
                 project_dataset='ZegOTToyWorldDataset' in
                 DATASETS.module_dict)
print(json.dumps(state))
"""


def run(*args) -> dict:
    result = subprocess.run([sys.executable, '-c', CODE, *args], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_import_mmseg_zegot_loads_no_toy_module():
    state = run()
    assert state == dict(modules=[], splits=['coco-stuff', 'context59', 'voc'],
                         dataset=False)


def test_the_project_package_registers_the_toy_world():
    state = run('project')
    assert state['modules'] == [] and not state['dataset']
    assert state['project_splits'] == ['coco-stuff', 'context59', 'toy', 'voc']
    assert state['project_dataset']
