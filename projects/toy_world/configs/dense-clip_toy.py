# Training-free dense-CLIP baseline on the toy world (MaskCLIP-style): the
# frozen toy CLIP's final-layer patch tokens through its own ln_post and
# proj, matched by cosine to the text embeddings of 'a photo of a {}.'.
# Built from ZegOT's own pieces with everything learnable switched off, so
# it shares the backbone, preprocessing and evaluation exactly. Nothing is
# trained: tools/init_checkpoint.py writes its checkpoint from the CLIP file.
_base_ = ['./zegot_toy.py']
model = dict(
    image_encoder=dict(out_indices=(5, )),
    text_encoder=dict(num_prompts=1, prompt_length=0,
                      template='a photo of a {}.'),
    decode_head=dict(
        dlfa_projection='frozen',
        use_ot=False,
        text_alignment=False,
        decoder=None,
        ensemble_weight=0.0,
        seen_bias=0.0))
