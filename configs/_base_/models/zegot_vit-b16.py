# ZegOT with a frozen OpenAI CLIP ViT-B/16 (spec: zegot_method.md).
# Dataset configs fill `class_names` / `seen_classes` (and the preprocessor's
# `size`, the crop size); nothing else here depends on the dataset.

# The CLIP both towers are built from. OpenAI weights need QuickGELU.
# `clip_pretrained` is a local file (nothing is downloaded); override with
# --cfg-options model.image_encoder.pretrained=... model.text_encoder.pretrained=...
clip_model_name = 'ViT-B-16'
clip_pretrained = 'checkpoints/ViT-B-16.pt'
clip_quick_gelu = True

data_preprocessor = dict(
    type='SegDataPreProcessor',
    # CLIP's normalisation, in 0-255 RGB.
    mean=[122.771, 116.746, 104.094],
    std=[68.501, 65.579, 66.632],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)

model = dict(
    type='ZegOTSegmentor',
    data_preprocessor=data_preprocessor,
    # The split is set by each leaf config as `zero_shot_split`: a name
    # ('voc', 'context59', 'coco-stuff', or one added with
    # mmseg_zegot.datasets.register_split, like the toy project's 'toy'),
    # dict(name=..., unseen_classes=[...]) or dict(classes=[...],
    # unseen_classes=[...]); or give class_names / seen_classes instead.
    setting='inductive',  # 'inductive' | 'transductive' | 'fully'
    # Label of pixels ZegOTZeroShotLabels hid (transductive): pseudo-labelled
    unlabeled_index=254,
    image_encoder=dict(
        type='ZegOTCLIPVisionTransformer',
        model_name=clip_model_name,
        pretrained=clip_pretrained,
        quick_gelu=clip_quick_gelu,
        out_indices=(5, 7, 9, 11),  # DLFA taps [ours]
        # Or the paper's contiguous range of the last layers, from n to L:
        # out_indices=None, first_tap=n.
        first_tap=None),
    text_encoder=dict(
        type='ZegOTPromptTextEncoder',
        model_name=clip_model_name,
        pretrained=clip_pretrained,
        quick_gelu=clip_quick_gelu,
        num_prompts=4,  # N
        prompt_length=16,  # L
        prompt_init_std=0.02),
    decode_head=dict(
        type='ZegOTHead',
        # None: filled from class_names and the image encoder (D, C, taps).
        num_classes=None,
        in_channels=None,
        channels=None,
        in_index=None,
        dlfa_projection='learned',  # 'learned' | 'frozen' [ours]
        use_ot=True,  # False: uniform plan (ablation)
        text_alignment=True,  # q = W[g*t; t] (False: q = t)
        text_alignment_init='trunc_normal',  # | 'identity' (q = t at step 0)
        ot_epsilon=0.05,
        ot_iters=50,
        ot_grad='detach',  # 'detach' | 'unrolled' [ours]
        decoder=dict(num_layers=3, num_heads=8, ffn_ratio=4, dropout=0.1),
        # S = logit(P) of the OT path as an attention bias of the decoder
        # (the paper's main figure) [ours, off]
        score_to_decoder=False,
        # Label-255 pixels (background, padding, inductive unseen pixels)
        # are negatives of every class, as in ZegCLIP / OTSeg criterion.py;
        # ignored_as_negative=False leaves them out (ablation) [ref]
        loss_decode=[
            dict(type='ZegOTFocalLoss', alpha=0.25, gamma=2.0,
                 loss_weight=100.0, loss_name='loss_focal',
                 ignored_as_negative=True),
            dict(type='ZegOTDiceLoss', loss_weight=1.0, loss_name='loss_dice',
                 ignored_as_negative=True),
        ],
        loss_ot=[
            dict(type='ZegOTFocalLoss', alpha=0.25, gamma=2.0,
                 loss_weight=100.0, loss_name='loss_focal_ot',
                 ignored_as_negative=True),
            dict(type='ZegOTDiceLoss', loss_weight=1.0,
                 loss_name='loss_dice_ot', ignored_as_negative=True),
        ],
        # p = σ(λ·decoder logits + (1-λ)·logit(P)), OTSeg decode_seg.py;
        # ensemble='probabilities' averages the sigmoids (ablation) [ref]
        ensemble='logits',
        ensemble_weight=0.5,  # λ
        seen_bias=0.1,  # inductive only: set 0 for transductive / fully
        ignore_index=255,
        align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
