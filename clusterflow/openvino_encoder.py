"""MiniLM on OpenVINO: converted once from the installed weights, cached by model identity.

OpenVINO runs the same transformer as sentence-transformers, from an IR converted here from the
local weights (no download, no ``optimum-intel``, which would pull a CUDA torch). Tokenising,
mean pooling over the attention mask and L2 normalisation are the sentence-transformers steps,
done the same way, so the vectors match torch fp32 to a cosine above 0.99 (see
``benchmarks/embed.py`` for the figures that chose the default).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from clusterflow.errors import EmbeddingError

logger = logging.getLogger(__name__)


def default_cache() -> Path:
    """Where converted encoders live: ``$CLUSTERFLOW_ENCODER_CACHE`` or the user's cache."""
    env = os.environ.get("CLUSTERFLOW_ENCODER_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "clusterflow" / "encoders"


@cache
def openvino_available() -> bool:
    """Whether the ``openvino`` package can be imported here."""
    return importlib.util.find_spec("openvino") is not None


def model_identity(model_dir: Path) -> str:
    """Hash of the model's configuration, tokenizer and weights, and the OpenVINO version.

    Exports shipped beside the weights (``onnx/``, ``openvino/``) and other frameworks' weight
    files do not take part: the IR is converted from the torch weights only.
    """
    import openvino

    digest = hashlib.sha256(openvino.__version__.encode())
    read = {".json", ".txt", ".model"}
    weights = {"model.safetensors", "pytorch_model.bin"}
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(model_dir)
        wanted = path.suffix in read or path.name in weights
        if rel.parts[0] in ("onnx", "openvino") or not wanted:
            continue
        digest.update(f"{rel}\x00{path.stat().st_size}\n".encode())
        with open(path, "rb") as handle:
            for block in iter(partial(handle.read, 1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:20]


def _max_seq_length(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def convert(model_dir: Path, target: Path) -> Path:
    """Convert the transformer of a sentence-transformers folder to an OpenVINO IR at ``target``.

    Written to a temporary folder and renamed, so a concurrent converter never sees half a model.
    """
    import openvino as ov
    import torch
    from transformers import AutoModel

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    bert = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )[0]

    example = {
        "input_ids": torch.ones((2, 8), dtype=torch.long),
        "attention_mask": torch.ones((2, 8), dtype=torch.long),
        "token_type_ids": torch.zeros((2, 8), dtype=torch.long),
    }
    with torch.no_grad():
        ov_model = ov.convert_model(_Hidden(bert), example_input=example)
    for port, name in zip(ov_model.inputs, example, strict=True):
        port.get_tensor().set_names({name})
        ov_model.reshape({port: ov.PartialShape([-1, -1])})
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert.", dir=target.parent))
    try:
        ov.save_model(ov_model, tmp / "model.xml", compress_to_fp16=False)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "model.xml").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("converted %s to OpenVINO IR in %s", model_dir.name, target)
    return target


class OpenVINOEncoder:
    """Texts -> L2-normalised mean-pooled MiniLM vectors, computed by OpenVINO on the CPU.

    Parameters
    ----------
    model_dir : Path
        The sentence-transformers folder (tokenizer, config and weights).
    precision : {"bf16", "fp32"}
        OpenVINO's inference precision hint.
    cache_dir : Path, optional
        Where converted models are kept, one folder per model identity.
    threads : int, optional
        CPU threads of one inference (None: OpenVINO's default, every core).

    Notes
    -----
    One encoder may be shared by threads (a Dask worker with several threads keeps one per
    process). The compiled model is thread-safe, but an infer request runs one inference at a
    time ("Infer Request is busy") and a fast tokenizer refuses concurrent calls ("Already
    borrowed"), so each thread gets its own request and tokenizer on its first call.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        precision: str = "bf16",
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        import openvino as ov
        from transformers import AutoTokenizer

        self.model_dir = Path(model_dir)
        self.precision = precision
        cache_dir = Path(cache_dir) if cache_dir else default_cache()
        target = cache_dir / f"{self.model_dir.name}-{model_identity(self.model_dir)}"
        if not (target / "model.xml").exists():
            convert(self.model_dir, target)
        self.ir_path = target / "model.xml"
        self.max_length = _max_seq_length(self.model_dir)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                str(self.model_dir), local_files_only=True
            )
            settings: dict[str, Any] = {
                "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"
            }
            if threads:
                settings["INFERENCE_NUM_THREADS"] = int(threads)
            self.compiled = ov.Core().compile_model(str(self.ir_path), "CPU", settings)
        except Exception as err:  # OpenVINO raises RuntimeError subclasses of many kinds
            raise EmbeddingError(
                f"cannot load the OpenVINO encoder from {target}: {err}",
                hint="delete that folder to convert again, or use --embed-backend torch",
            ) from err
        self._local = threading.local()
        self._local.tools = (self.tokenizer, self.compiled.create_infer_request())

    def _tools(self) -> tuple[Any, Any]:
        """Return this thread's tokenizer and infer request (created on its first call)."""
        tools = getattr(self._local, "tools", None)
        if tools is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
            tools = self._local.tools = (tokenizer, self.compiled.create_infer_request())
        return tools

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Return one unit vector per text, float32, in the order given."""
        tokenizer, request = self._tools()
        out = []
        for start in range(0, len(texts), batch_size):
            batch = [str(t).strip() for t in texts[start : start + batch_size]]
            tokens = tokenizer(
                batch,
                padding=True,
                truncation="longest_first",
                max_length=self.max_length,
                return_tensors="np",
            )
            inputs = {
                "input_ids": tokens["input_ids"].astype(np.int64),
                "attention_mask": tokens["attention_mask"].astype(np.int64),
                "token_type_ids": tokens.get(
                    "token_type_ids", np.zeros_like(tokens["input_ids"])
                ).astype(np.int64),
            }
            hidden = request.infer(inputs)[self.compiled.output(0)]
            mask = inputs["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden.astype(np.float32) * mask).sum(axis=1) / np.clip(
                mask.sum(axis=1), 1e-9, None
            )
            norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out.append(pooled / norms)
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)
