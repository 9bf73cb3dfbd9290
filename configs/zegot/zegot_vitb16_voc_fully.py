# ZegOT, ViT-B/16, PASCAL VOC, fully supervised (the upper bound): every
# class labelled in training; reported on the same seen/unseen split.
_base_ = ['./zegot_vitb16_voc.py']
model = dict(setting='fully', decode_head=dict(seen_bias=0.0))
# No transductive run starts from this one: no half-way checkpoint to keep.
default_hooks = dict(checkpoint=dict(keep_iters=[]))
