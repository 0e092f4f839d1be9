#!/usr/bin/python3
"""Write a full-size, sparse, Phi-3.5-mini-instruct-shaped safetensors pair.

    gen_phi35.py OUTDIR [bf16|f32]

OUTDIR gets model-00001-of-00002.safetensors, model-00002-of-00002.safetensors,
model.safetensors.index.json and config.json. The shard headers are real
safetensors headers (8-byte little-endian length, compact JSON with
__metadata__ {"format": "pt"}, padded with spaces to a multiple of 8, tensors
laid out in name order as the safetensors serializer does) naming the real
Phi-3.5-mini-instruct tensors: Phi3ForCausalLM, 32 layers, hidden 3072,
intermediate 8192, vocab 32064, 32 heads of 96 (no GQA), untied lm_head:

    model.embed_tokens.weight                       [32064, 3072]
    model.layers.N.self_attn.o_proj.weight          [3072, 3072]
    model.layers.N.self_attn.qkv_proj.weight        [9216, 3072]
    model.layers.N.mlp.gate_up_proj.weight          [16384, 3072]
    model.layers.N.mlp.down_proj.weight             [3072, 8192]
    model.layers.N.input_layernorm.weight           [3072]
    model.layers.N.post_attention_layernorm.weight  [3072]
    model.norm.weight                               [3072]
    lm_head.weight                                  [32064, 3072]

195 tensors, 3,821,079,552 parameters. Tensors go to shards as the
Hugging Face sharder puts them: in state_dict order, a new shard when the
next tensor would take the shard past 5 GB (5 * 10**9 bytes). With bf16 (the
published dtype) this gives the published pair: the embedding, layers 0-20
and layer 21's o_proj in shard 1 (4,972,489,328 bytes), the rest in shard 2
(2,669,692,552 bytes), 7,642,159,104 bytes of tensor data; the script checks
these sizes. f32 keeps the same two-shard assignment with every tensor in
float32 (the form the seed's QINS Phi-3.5 experiment held, 13,824 MiB of
linear weights): 15,284,318,208 bytes of data, ~15.3 GB apparent.

The data region is never written: each shard is extended with truncate, so
it occupies no disk blocks (a sparse file) and reads as zeros. Each file is
written under a temporary name and renamed.
"""
import json
import os
import sys

HIDDEN, INTER, VOCAB, LAYERS = 3072, 8192, 32064, 32
SHARD_LIMIT = 5 * 10**9
PUBLISHED_BF16_SHARDS = [4972489328, 2669692552]


def state_dict_order():
    """(name, shape) in Phi3ForCausalLM.state_dict() order."""
    yield "model.embed_tokens.weight", [VOCAB, HIDDEN]
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        yield p + "self_attn.o_proj.weight", [HIDDEN, HIDDEN]
        yield p + "self_attn.qkv_proj.weight", [3 * HIDDEN, HIDDEN]
        yield p + "mlp.gate_up_proj.weight", [2 * INTER, HIDDEN]
        yield p + "mlp.down_proj.weight", [HIDDEN, INTER]
        yield p + "input_layernorm.weight", [HIDDEN]
        yield p + "post_attention_layernorm.weight", [HIDDEN]
    yield "model.norm.weight", [HIDDEN]
    yield "lm_head.weight", [VOCAB, HIDDEN]


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def shard_plan():
    """Shards as lists of (name, shape), split by the bf16 sizes."""
    shards, cur, size = [], [], 0
    for name, shape in state_dict_order():
        nbytes = numel(shape) * 2
        if cur and size + nbytes > SHARD_LIMIT:
            shards.append(cur)
            cur, size = [], 0
        cur.append((name, shape))
        size += nbytes
    shards.append(cur)
    return shards


def header(tensors, dtype, esize):
    """The header bytes (length prefix included) and the data size."""
    meta = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, shape in sorted(tensors):
        n = numel(shape) * esize
        meta[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    js = json.dumps(meta, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    return len(js).to_bytes(8, "little") + js, off


def write_atomic(path, data, size=None):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        if size is not None:
            f.truncate(size)  # sparse: no blocks for the data region
    os.replace(tmp, path)


def main(argv):
    if len(argv) < 2 or (len(argv) > 2 and argv[2] not in ("bf16", "f32")):
        sys.exit(__doc__)
    out = argv[1]
    kind = argv[2] if len(argv) > 2 else "bf16"
    dtype, esize, torch_dtype = {"bf16": ("BF16", 2, "bfloat16"), "f32": ("F32", 4, "float32")}[kind]
    os.makedirs(out, exist_ok=True)
    shards = shard_plan()
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map, total, sizes = {}, 0, []
    for fname, tensors in zip(names, shards):
        head, data = header(tensors, dtype, esize)
        write_atomic(os.path.join(out, fname), head, len(head) + data)
        sizes.append(len(head) + data)
        total += data
        for name, _ in tensors:
            weight_map[name] = fname
    if kind == "bf16" and sizes != PUBLISHED_BF16_SHARDS:
        sys.exit(f"shard sizes {sizes} differ from the published {PUBLISHED_BF16_SHARDS}")
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    write_atomic(os.path.join(out, "model.safetensors.index.json"), json.dumps(index, indent=2).encode() + b"\n")
    config = {
        "architectures": ["Phi3ForCausalLM"],
        "model_type": "phi3",
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": VOCAB,
        "max_position_embeddings": 131072,
        "original_max_position_embeddings": 4096,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-05,
        "tie_word_embeddings": False,
        "torch_dtype": torch_dtype,
    }
    write_atomic(os.path.join(out, "config.json"), json.dumps(config, indent=2).encode() + b"\n")
    print(f"{out}: {len(weight_map)} tensors in {len(shards)} shards of {sizes} bytes, {total} data bytes ({kind})")


if __name__ == "__main__":
    main(sys.argv)
