# Runtime defaults of mmseg_zegot: mmseg's, plus our components and
# checkpoints that load with torch.load(weights_only=True).
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['mmseg_zegot'], allow_failed_imports=False)
custom_hooks = [dict(type='ZegOTPlainCheckpointHook')]
