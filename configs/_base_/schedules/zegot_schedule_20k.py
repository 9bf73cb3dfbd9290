# ZegOT's recipe (spec §11): AdamW lr 2e-5, weight decay 0.01, lr x10 for the
# head and the prompts; 1500-iteration linear warm-up, then poly (power 0.9,
# min 1e-6); no weight decay on norm layers (ZegCLIP). Batch 16 in total
# (4 GPUs x 4); 20k iterations (VOC).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-5, betas=(0.9, 0.999),
                   weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'text_encoder.contexts': dict(lr_mult=10.0),
            'decode_head': dict(lr_mult=10.0),
        },
        norm_decay_mult=0.0))
warmup_iters = 1500
max_iters = 20000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False,
         begin=warmup_iters, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine cannot infer the rule for 'hIoU': say that higher is better.
    checkpoint=dict(type='ZegOTCheckpointHook', by_epoch=False, interval=2000,
                    save_best='hIoU', rule='greater', max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
