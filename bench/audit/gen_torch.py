#!/usr/bin/python3
"""Write the PyTorch checkpoints of the audit benchmark with real torch.save.

    gen_torch.py gpt2-large OUT.pt   # ~3.25 GB fp32 GPT-2-large state_dict
    gen_torch.py many OUT.pt [N]     # N (default 2000) tiny tensors

gpt2-large has the tensor names and shapes of the published GPT-2 large
checkpoint as GPT2LMHeadModel.state_dict() gives them: vocab 50257,
context 1024, d_model 1280, 36 blocks, Conv1D weights stored [in, out], the
float32 causal-mask buffer attn.bias [1, 1, 1024, 1024] and the scalar
attn.masked_bias of each block, and lm_head.weight tied to
transformer.wte.weight as state_dict() returns it (another tensor object on
the same storage), so torch.save writes that storage once.
774,030,080 parameters, 3,247,115,408 bytes of storages. Tensors are made
with torch.empty: nothing is computed, the file is only written.

many is a flat dict of N float32 [4, 4] tensors named like a deep model's
state_dict ("model.layers.{i // 8}.mlp.proj_{i % 8}.weight"): its cost is the
number of tensors, not their size.

The file is written to OUT.tmp and renamed, so an interrupted run never
leaves a partial OUT behind.
"""
import os
import sys
from collections import OrderedDict

import torch


def gpt2_large():
    vocab, ctx, d, layers = 50257, 1024, 1280, 36
    sd = OrderedDict()
    f32 = torch.float32
    sd["transformer.wte.weight"] = torch.empty(vocab, d, dtype=f32)
    sd["transformer.wpe.weight"] = torch.empty(ctx, d, dtype=f32)
    for i in range(layers):
        p = f"transformer.h.{i}."
        sd[p + "ln_1.weight"] = torch.empty(d, dtype=f32)
        sd[p + "ln_1.bias"] = torch.empty(d, dtype=f32)
        sd[p + "attn.bias"] = torch.empty(1, 1, ctx, ctx, dtype=f32)
        sd[p + "attn.masked_bias"] = torch.tensor(-1e4)
        sd[p + "attn.c_attn.weight"] = torch.empty(d, 3 * d, dtype=f32)
        sd[p + "attn.c_attn.bias"] = torch.empty(3 * d, dtype=f32)
        sd[p + "attn.c_proj.weight"] = torch.empty(d, d, dtype=f32)
        sd[p + "attn.c_proj.bias"] = torch.empty(d, dtype=f32)
        sd[p + "ln_2.weight"] = torch.empty(d, dtype=f32)
        sd[p + "ln_2.bias"] = torch.empty(d, dtype=f32)
        sd[p + "mlp.c_fc.weight"] = torch.empty(d, 4 * d, dtype=f32)
        sd[p + "mlp.c_fc.bias"] = torch.empty(4 * d, dtype=f32)
        sd[p + "mlp.c_proj.weight"] = torch.empty(4 * d, d, dtype=f32)
        sd[p + "mlp.c_proj.bias"] = torch.empty(d, dtype=f32)
    sd["transformer.ln_f.weight"] = torch.empty(d, dtype=f32)
    sd["transformer.ln_f.bias"] = torch.empty(d, dtype=f32)
    # Tied as state_dict() ties it: a distinct tensor object on wte's storage.
    sd["lm_head.weight"] = sd["transformer.wte.weight"].detach()
    return sd


def many(n):
    sd = OrderedDict()
    for i in range(n):
        sd[f"model.layers.{i // 8}.mlp.proj_{i % 8}.weight"] = torch.zeros(4, 4)
    return sd


def main(argv):
    if len(argv) < 3 or argv[1] not in ("gpt2-large", "many"):
        sys.exit(__doc__)
    kind, out = argv[1], argv[2]
    sd = gpt2_large() if kind == "gpt2-large" else many(int(argv[3]) if len(argv) > 3 else 2000)
    tmp = out + ".tmp"
    torch.save(sd, tmp)
    os.replace(tmp, out)
    seen, nbytes = set(), 0
    for t in sd.values():
        s = t.storage()
        if s.data_ptr() not in seen:
            seen.add(s.data_ptr())
            nbytes += s.nbytes()
    print(f"{out}: {len(sd)} tensors, {nbytes} storage bytes, {os.path.getsize(out)} file bytes")


if __name__ == "__main__":
    main(sys.argv)
