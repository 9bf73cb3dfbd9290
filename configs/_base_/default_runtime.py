# Runtime defaults of mmseg_zegot: mmseg's, plus our components and
# checkpoints that load with torch.load(weights_only=True).
_base_ = ['mmseg::_base_/default_runtime.py']

# 'mmseg_zegot' registers our components. 'mmseg_zegot.safe_loading' is the
# opt-in that makes MMEngine load every checkpoint (local files, URLs) with
# torch.load(weights_only=True) in this process; ZegOTPlainCheckpointHook
# below writes checkpoints that load that way.
custom_imports = dict(imports=['mmseg_zegot', 'mmseg_zegot.safe_loading'],
                      allow_failed_imports=False)
# ZegOTStartupCheckHook: before the first iteration, the datasets, the model
# and the metrics must agree on the classes and split, and the first 8 label
# files of every dataset must hold class indices or 255.
custom_hooks = [
    dict(type='ZegOTPlainCheckpointHook'),
    dict(type='ZegOTStartupCheckHook', num_label_files=8),
]

# TensorBoard logging of the training losses, learning rates and validation
# metrics (events in WORK_DIR/TIMESTAMP/vis_data/; `tensorboard --logdir
# WORK_DIR`). Switch it on here, in a config, with `--cfg-options
# tensorboard=True` or with `tools/train.py --tensorboard`: tools/train.py
# then adds a TensorboardVisBackend to `visualizer.vis_backends`.
tensorboard = False

# A fixed seed: MMEngine seeds the data sampler before it reads a checkpoint,
# so `--resume` continues the same data order only if the seed is fixed.
randomness = dict(seed=0)
