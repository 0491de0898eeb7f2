"""The embedding backends against each other, with the real bundled model: the plain graph that
OpenVINO runs, OpenVINO itself (where installed), the automatic choice of the default model and
batches run side by side."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from paperradar.embed import load_embedder, vector_name
from paperradar.embed.base import (
    PUNCTUATION,
    WordPiece,
    embed_batched,
    mean_pool,
    pad,
    split_windows,
)
from paperradar.embed.models import (
    MiniLMOnnx,
    MiniLMOpenVINO,
    _calibration_texts,
    _has_amx_bf16,
    _has_int8_unit,
    _has_native_bf16,
    default_model,
    int8_minilm,
    plain_minilm,
)
from paperradar.errors import FeatureUnavailable

TEXTS = [
    "Myocardial infarction outcomes after early reperfusion. Patients treated by angioplasty.",
    "Register allocation in optimizing compilers by graph colouring.",
    "Glacier retreat under a warming climate: mountain ice masses are shrinking.",
    "Quantum error correction with surface codes protects logical qubits from noise.",
    "x",
    "量子コンピュータの誤り訂正",
    " ".join(["long"] * 400),
]


def test_plain_graph_computes_what_the_shipped_graph_does(models_dir: Path) -> None:
    """The standard-operator rebuild, run by ONNX Runtime in float32, against the shipped graph
    (with its attention mask) on the same texts."""
    plain = plain_minilm(models_dir)
    assert plain.name.startswith("all-MiniLM-L6-v2.plain.") and plain.is_file()
    assert plain_minilm(models_dir) == plain  # cached: built once
    graph = onnx.load(str(plain))
    assert {n.domain for n in graph.graph.node} == {""}  # standard operators only
    assert [i.name for i in graph.graph.input] == ["input_ids"]
    session = ort.InferenceSession(str(plain), providers=["CPUExecutionProvider"])

    def run(enc):  # type: ignore[no-untyped-def]
        (hidden,) = session.run(["last_hidden_state"], {"input_ids": enc.ids})
        return mean_pool(hidden, enc.mask)

    got = embed_batched(WordPiece(), TEXTS, run, 384, 4, unpadded=True)
    ref = MiniLMOnnx(batch_size=4).embed_documents(TEXTS)
    assert float((got * ref).sum(axis=1).min()) > 0.9999


def test_the_cached_plain_graph_is_found_without_loading_onnx_runtime(models_dir: Path) -> None:
    """Importing onnx/onnxruntime holds the GIL for seconds (a worker's lease heartbeat stalls),
    and the OpenVINO path does not need them once the graph is built."""
    plain = plain_minilm(models_dir)
    code = (
        "import sys; from pathlib import Path; from paperradar.embed.models import plain_minilm;"
        f"p = plain_minilm(Path({str(models_dir)!r}));"
        "print(p, 'onnxruntime' in sys.modules, 'onnx' in sys.modules)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert run.stdout.split() == [str(plain), "False", "False"]


def test_batches_side_by_side_give_the_same_vectors(models_dir: Path) -> None:
    model = load_embedder("minilm-q8", batch_size=2, cache_dir=models_dir)
    assert isinstance(model, MiniLMOnnx)
    texts = TEXTS * 3
    together = embed_batched(model.tokenizer, texts, model._run, 384, 2, unpadded=True, workers=3)
    alone = embed_batched(model.tokenizer, texts, model._run, 384, 2, unpadded=True, workers=1)
    assert np.allclose(together, alone, atol=1e-6)


needs_openvino = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None, reason="openvino is not installed"
)


@needs_openvino
def test_openvino_model_stays_close_to_onnx_runtime(models_dir: Path) -> None:
    """bf16 on AMX where the CPU has it (``minilm-bf16``); elsewhere the same graph unchecked,
    in bf16 where the CPU computes it natively (AVX512-BF16), else in float32."""
    amx = _has_amx_bf16()
    bf16 = _has_native_bf16()
    model = MiniLMOpenVINO(
        plain_minilm(models_dir),
        batch_size=3,
        threads=2,
        precision="bf16" if amx else None,
        ov_config={"INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32"},
    )
    assert model.precision == ("bf16" if bf16 else "f32")
    got = model.embed_documents(TEXTS)
    assert got.shape == (len(TEXTS), 384) and np.isfinite(got).all()
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    ref = MiniLMOnnx(batch_size=4).embed_documents(TEXTS)
    assert float((got * ref).sum(axis=1).min()) > 0.99
    query = model.embed_query("heart attack treatment")
    assert query.shape == (384,) and float(query @ got[0]) > float(query @ got[1]) + 0.2
    assert model.embed_documents([]).shape == (0, 384)


@needs_openvino
def test_openvino_without_amx_is_refused_for_the_automatic_choice(models_dir: Path) -> None:
    if _has_amx_bf16():
        pytest.skip("this CPU has AMX-BF16")
    with pytest.raises(FeatureUnavailable, match="AMX-BF16"):
        MiniLMOpenVINO(plain_minilm(models_dir))
    with pytest.raises(FeatureUnavailable, match="AMX-BF16"):
        load_embedder("minilm-bf16", cache_dir=models_dir)


def test_default_model_is_chosen_by_what_is_installed(models_dir: Path) -> None:
    """int8 in two windows with OpenVINO + NNCF on a CPU with an int8 dot-product unit (AMX-INT8,
    AVX-512 VNNI, AVX-VNNI), else bf16 with OpenVINO on an AMX-BF16 CPU, else the int8 ONNX
    Runtime model (the default install). The default loads as itself, not as a fallback."""
    openvino = importlib.util.find_spec("openvino") is not None
    nncf = importlib.util.find_spec("nncf") is not None
    int8 = openvino and nncf and _has_int8_unit()
    bf16 = openvino and _has_amx_bf16()
    expected = "minilm-int8-2x112" if int8 else "minilm-bf16" if bf16 else "minilm-q8"
    assert default_model() == expected
    model = load_embedder("default", cache_dir=models_dir)
    assert model.name == vector_name("default") == vector_name(expected)
    assert vector_name("minilm-bf16") == "all-MiniLM-L6-v2/bf16-openvino"
    assert vector_name("minilm-q8") == "all-MiniLM-L6-v2/q8-onnx"


def test_a_shorter_truncation_is_a_model_of_its_own(models_dir: Path) -> None:
    """``…-128`` models cut texts at 128 tokens and store their vectors under another name, so
    switching between truncations re-embeds instead of mixing vectors."""
    long_text = " ".join(["protein"] * 400)
    names = ["minilm-q8-128"]
    if importlib.util.find_spec("openvino") is not None and _has_amx_bf16():
        names.append("minilm-bf16-128")
    stored = {vector_name(n) for n in [*names, "minilm-q8", "minilm-bf16"]}
    assert len(stored) == len(names) + 2  # all distinct
    for name in names:
        model = load_embedder(name, batch_size=4, cache_dir=models_dir)
        limit = int(name.rsplit("-", 1)[1])
        assert model.name == vector_name(name) and model.name.endswith(f"-{limit}")
        assert [len(r) for r in model.tokenizer.token_ids([long_text, "x"])] == [limit, 3]  # type: ignore[attr-defined]
        full = load_embedder(name.rsplit("-", 1)[0], batch_size=4, cache_dir=models_dir)
        short, whole = (
            model.embed_documents([long_text, TEXTS[0]]),
            full.embed_documents([long_text, TEXTS[0]]),
        )
        assert float(short[1] @ whole[1]) > 0.999  # a short text is not cut: the same vector
        assert float(short[0] @ whole[0]) < 0.9999  # a long one is


@needs_openvino
def test_openvino_settings_can_be_overridden(models_dir: Path) -> None:
    model = MiniLMOpenVINO(
        plain_minilm(models_dir),
        threads=1,
        precision=None,
        ov_config={"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"},
    )
    assert model.precision == "f32"
    assert str(model._compiled.get_property("PERFORMANCE_HINT")) == "LATENCY"


needs_nncf = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None
    or importlib.util.find_spec("nncf") is None
    or not _has_int8_unit(),
    reason="openvino, nncf or a CPU with an int8 dot-product unit (AMX-INT8, VNNI) is missing",
)


@needs_nncf
def test_int8_openvino_model_is_quantized_once_and_stays_close(
    models_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The NNCF int8 model: built once from the shipped weights and the shipped demo abstracts,
    cached next to the plain graph, vectors normalised and close to the float model's. NNCF's
    progress bars stay off stdout (which carries ``--json`` output)."""
    model = load_embedder("minilm-int8-ov", batch_size=3, cache_dir=models_dir)
    assert "Statistics collection" not in capfd.readouterr().out
    assert model.name == vector_name("minilm-int8-ov") == "all-MiniLM-L6-v2/int8-openvino"
    assert model.name not in {vector_name("minilm-bf16"), vector_name("minilm-q8")}
    built = int8_minilm(models_dir)
    assert built.is_file() and built.with_suffix(".bin").is_file()
    assert sorted(models_dir.glob("all-MiniLM-L6-v2.int8.*")) == sorted(
        [built, built.with_suffix(".bin")]
    )
    got = model.embed_documents(TEXTS)
    assert got.shape == (len(TEXTS), 384) and np.isfinite(got).all()
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    ref = MiniLMOpenVINO(
        plain_minilm(models_dir), precision=None, ov_config={"INFERENCE_PRECISION_HINT": "f32"}
    ).embed_documents(TEXTS)
    cosine = (got * ref).sum(axis=1)
    assert float(cosine[:4].min()) > 0.98  # sentences
    # Static activation ranges fit text like the calibration abstracts: one word repeated 400
    # times comes out further off (0.66 measured), still a unit vector.
    assert float(cosine.min()) > 0.5
    query = model.embed_query("heart attack treatment")
    assert float(query @ got[0]) > float(query @ got[1]) + 0.2


@needs_nncf
def test_int8_in_two_windows_stays_close_to_the_float_model(models_dir: Path) -> None:
    """``minilm-int8-2x128``: the NNCF int8 graph, texts over 128 tokens in two windows. Its
    vectors are stored under a name of their own; a text of up to 128 tokens (a query) gives
    what the int8 model gives without windows; all stay close to the float model's."""
    model = load_embedder("minilm-int8-2x128", batch_size=3, cache_dir=models_dir)
    assert isinstance(model, MiniLMOpenVINO) and model.window == 128
    assert model.name == vector_name("minilm-int8-2x128") == "all-MiniLM-L6-v2/int8-openvino-2x128"
    assert model.name not in {vector_name(n) for n in ("minilm-int8-ov", "minilm-bf16")}
    texts = [*TEXTS[:4], " ".join(TEXTS[:4]) * 3, " ".join(TEXTS[:4]) * 6]  # ~180, ~250 tokens
    got = model.embed_documents(texts)
    assert got.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    whole = load_embedder("minilm-int8-ov", batch_size=3, cache_dir=models_dir).embed_documents(
        texts
    )
    assert float((got[:4] * whole[:4]).sum(axis=1).min()) > 0.999  # short: one window
    assert float((got[4:] * whole[4:]).sum(axis=1).min()) > 0.9
    ref = MiniLMOpenVINO(
        plain_minilm(models_dir),
        precision=None,
        window=128,
        ov_config={"INFERENCE_PRECISION_HINT": "f32"},
    ).embed_documents(texts)
    assert float((got * ref).sum(axis=1).min()) > 0.98
    query = model.embed_query("heart attack treatment")
    assert float(query @ got[0]) > float(query @ got[1]) + 0.2


@needs_nncf
def test_fast_int8_model_reads_words_not_punctuation(models_dir: Path) -> None:
    """``minilm-int8-2x112`` (the automatic choice on int8 CPUs): the same int8 graph in windows
    of 112 tokens, shown no punctuation. Punctuation changes nothing; the vectors are stored
    under a name of their own and stay close to those of ``minilm-int8-2x128``; a query still
    finds its text."""
    model = load_embedder("minilm-int8-2x112", batch_size=3, cache_dir=models_dir)
    assert isinstance(model, MiniLMOpenVINO) and model.window == 112
    assert model.name == vector_name("minilm-int8-2x112") == "all-MiniLM-L6-v2/int8-openvino-2x112"
    assert model.name != vector_name("minilm-int8-2x128")
    texts = [*TEXTS[:4], " ".join(TEXTS[:4]) * 3, " ".join(TEXTS[:4]) * 6]  # ~180, ~250 tokens
    got = model.embed_documents(texts)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    bare = [re.sub(f"[{re.escape(PUNCTUATION)}]", " ", t) for t in texts]
    assert bare != texts
    assert float((got * model.embed_documents(bare)).sum(axis=1).min()) > 0.999
    wider = load_embedder("minilm-int8-2x128", batch_size=3, cache_dir=models_dir)
    assert float((got * wider.embed_documents(texts)).sum(axis=1).min()) > 0.95
    query = model.embed_query("heart attack treatment")
    assert float(query @ got[0]) > float(query @ got[1]) + 0.2


@needs_nncf
def test_int8_model_runs_on_the_int8_unit_in_the_cpus_precision(models_dir: Path) -> None:
    """The int8 model as compiled on this CPU: every matrix product (FullyConnected) runs in
    int8 by a JIT kernel, not a reference one (AVX-512 VNNI on Zen 4: ``brgemm_avx512_i8``, AMX:
    ``brgemm_avx512_amx_i8``), the rest in bf16 only on AVX512-BF16 without AMX (Zen 4), where
    that was measured to cost no quality; float32 elsewhere, AMX included."""
    model = load_embedder("minilm-int8-2x128", batch_size=3, cache_dir=models_dir)
    assert isinstance(model, MiniLMOpenVINO)
    zen4_like = _has_native_bf16() and not _has_amx_bf16()
    assert model.precision == ("bf16" if zen4_like else "f32")
    products = [
        (info["runtimePrecision"].astype(str), info["primitiveType"].astype(str))
        for info in (op.get_rt_info() for op in model._compiled.get_runtime_model().get_ops())
        if info["layerType"].astype(str) == "FullyConnected"
    ]
    assert products and {p for p, _ in products} <= {"i8", "u8"}, products
    assert not [k for _, k in products if "ref" in k], products


def test_int8_model_is_refused_without_an_int8_unit(models_dir: Path) -> None:
    """Refused at once, before the minute of quantizing."""
    if _has_int8_unit():
        pytest.skip("this CPU has an int8 dot-product unit (AMX-INT8 or VNNI)")
    before = set(models_dir.glob("all-MiniLM-L6-v2.int8.*"))
    for name in ("minilm-int8-ov", "minilm-int8-2x128", "minilm-int8-2x112"):
        with pytest.raises(FeatureUnavailable, match="int8 dot-product unit"):
            load_embedder(name, cache_dir=models_dir)
    assert set(models_dir.glob("all-MiniLM-L6-v2.int8.*")) == before


def test_calibration_texts_ship_with_the_package() -> None:
    texts = _calibration_texts()
    assert len(texts) == 300 and all(len(t) > 100 for t in texts)


@pytest.mark.parametrize(
    "length", [3, 10, 127, 128, 129, 130, 143, 144, 145, 200, 253, 254, 255, 256, 400]
)
def test_windows_cover_each_inner_token_once(length: int) -> None:
    """A row of up to 128 tokens stays whole; a longer one becomes a first window of exactly 128
    tokens and a second one of a multiple of 16 tokens (at most 128), just long enough for the
    rest, each between the row's [CLS] and [SEP]; the tokens pooled (those not skipped) are the
    row's first 252 inner tokens, each once."""
    row = [101, *range(1000, 1000 + length - 2), 102]
    windows, owners, skips = split_windows([[101, 102], row], 128)
    assert owners[0] == 0 and windows[0] == [101, 102] and skips[0] == 0
    mine = [(w, s) for w, o, s in zip(windows, owners, skips, strict=True) if o == 1]
    if length <= 128:
        assert mine == [(row, 0)]
        return
    rest = min(length - 2, 252) - 126  # inner tokens left for the second window
    assert [len(w) for w, _ in mine] == [128, min(128, -(-(rest + 2) // 16) * 16)]
    assert len(mine[1][0]) - 2 - mine[1][1] == rest  # its new tokens, none recomputed past 15
    assert mine[1][1] < 16
    assert all(w[0] == 101 and w[-1] == 102 for w, _ in mine)
    pooled = [t for w, s in mine for t in w[1 + s : -1]]
    assert pooled == row[1 : min(length - 1, 253)]


def test_windows_of_another_step() -> None:
    """``step`` 1 gives a second window of exactly the rest; a step of the window's length, a
    second window as long as the first; a step under 1 is refused."""
    row = [101, *range(1000, 1200), 102]  # 202 tokens: 74 left after the first window
    assert [len(w) for w in split_windows([row], 128, step=1)[0]] == [128, 76]
    assert [len(w) for w in split_windows([row], 128, step=128)[0]] == [128, 128]
    with pytest.raises(ValueError, match="step"):
        split_windows([row], 128, step=0)


def test_tokens_of_dropped_characters_are_left_out() -> None:
    """``drop``: those characters' tokens go, [CLS] and [SEP] stay, and the text is read on so
    that ``max_length`` tokens of what is left reach the model; without ``drop`` nothing
    changes."""
    text = "Cells (in vitro), p53-mutant; growth: 12 %. " + "more words " * 200
    plain = WordPiece(max_length=16).token_ids([text])[0]
    dropped = WordPiece(max_length=16, drop=PUNCTUATION).token_ids([text])[0]
    assert len(plain) == len(dropped) == 16
    assert plain[0] == dropped[0] == 101 and plain[-1] == dropped[-1] == 102
    tok = WordPiece()
    marks = {tok._tok.token_to_id(c) for c in PUNCTUATION}
    assert marks & set(plain) and not marks & set(dropped)
    words = [t for t in plain[1:-1] if t not in marks]
    assert dropped[1 : 1 + len(words)] == words and len(dropped) - 2 > len(words)
    assert WordPiece(drop=PUNCTUATION).token_ids(["(), . ;"]) == [[101, 102]]
    assert WordPiece(drop=PUNCTUATION).token_ids(["a, b"]) == tok.token_ids(["a b"])


def test_windowed_vector_is_the_mean_over_all_tokens(models_dir: Path) -> None:
    """A text of more than 128 tokens: its vector is the mean of the token vectors of both
    windows, the shared tokens counted once (computed here window by window); a short text's
    vector is what the whole text gives. (The float graph: the q8 model's activation ranges
    depend on what else is in the batch.)"""
    session = ort.InferenceSession(
        str(plain_minilm(models_dir)), providers=["CPUExecutionProvider"]
    )

    def hidden(ids: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
        (out,) = session.run(["last_hidden_state"], {"input_ids": ids})
        return out  # type: ignore[no-any-return]

    def run(enc):  # type: ignore[no-untyped-def]
        return mean_pool(hidden(enc.ids), enc.pool)

    tok = WordPiece()
    long_text = " ".join(TEXTS[:4]) * 3  # about 180 tokens
    (row,) = tok.token_ids([long_text])
    assert 128 < len(row) < 256
    got = embed_batched(tok, [long_text, *TEXTS], run, 384, 4, unpadded=True, window=128)
    whole = embed_batched(tok, [long_text, *TEXTS], run, 384, 4, unpadded=True)
    short = [i for i, r in enumerate(tok.token_ids(TEXTS), 1) if len(r) <= 128]
    assert np.allclose(got[short], whole[short], atol=1e-5)
    windows, _, skips = split_windows([row], 128)
    total = np.zeros(384, np.float32)
    for w, skip in zip(windows, skips, strict=True):
        total += hidden(pad([w]).ids)[0, [0, *range(1 + skip, len(w))]].sum(axis=0)
    assert float(got[0] @ (total / np.linalg.norm(total))) > 0.99999
    assert float(got[0] @ whole[0]) > 0.95  # close to the one 180-token pass
