"""CLIP (open_clip): image tower for a semantic similarity signal, text tower for prompts.

open_clip and torch are imported only when a CLIP fingerprinter is built: the default
install does not have them, and where they cannot be had the screener runs without CLIP.
Weights come from a pretrained tag (resolved through the Hugging Face hub cache, or
downloaded where the network allows) or a local checkpoint file. There is no fallback to
random weights: ``random_weights=True`` exists for shape tests only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from screener.models.base import Fingerprint, Kind, ModelUnavailable, register, unit_rows

INSTALL_HINT = (
    "install the clip extra (`pip install 'screener[clip]'` with a torch and torchvision "
    "that match), then either let open_clip fetch the pretrained tag into the hub cache on a "
    "machine with network access, or set SCREENER_CLIP_WEIGHTS to a local checkpoint file"
)


class CLIP:
    """open_clip image and text towers; unit vectors, cosine similarity."""

    name = "clip"
    kind: Kind = "dense"

    def __init__(
        self,
        arch: str = "ViT-B-32",
        pretrained: str = "laion2b_s34b_b79k",
        weights: Path | None = None,
        threads: int = 0,
        batch_size: int = 16,
        random_weights: bool = False,
    ) -> None:
        try:
            import open_clip
            import torch
        except Exception as exc:  # torchvision built for another torch raises RuntimeError
            raise ModelUnavailable(f"CLIP cannot be imported ({exc}); {INSTALL_HINT}") from exc
        if threads > 0:
            torch.set_num_threads(threads)
        if weights is not None and not Path(weights).is_file():
            raise ModelUnavailable(f"CLIP weights file {weights} does not exist; {INSTALL_HINT}")
        source = str(weights) if weights is not None else pretrained
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=None if random_weights else source
            )
        except Exception as exc:
            raise ModelUnavailable(
                f"cannot load CLIP {arch} weights {source!r}: {exc}; {INSTALL_HINT}"
            ) from exc
        model.eval()
        self._torch: Any = torch
        self._model: Any = model
        self._preprocess: Any = preprocess
        self._tokenizer: Any = open_clip.get_tokenizer(arch)
        self.batch_size = batch_size
        self.dim = int(model.visual.output_dim)
        tag = "random" if random_weights else Path(source).name
        self.spec_id = f"clip/open_clip-{open_clip.__version__}/{arch}/{tag}"

    def fingerprint(self, images: Sequence[Image.Image]) -> list[Fingerprint]:
        out: list[Fingerprint] = []
        with self._torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                batch = self._torch.stack([self._preprocess(im.convert("RGB")) for im in chunk])
                rows = self._model.encode_image(batch).float().numpy().astype(np.float32)
                out.extend(Fingerprint(row) for row in unit_rows(rows))
        return out

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Unit text embeddings in the image embedding space, one row per text."""
        with self._torch.inference_mode():
            tokens = self._tokenizer(list(texts))
            rows = self._model.encode_text(tokens).float().numpy().astype(np.float32)
        return unit_rows(rows)


@register("clip")
def _clip(
    arch: str = "ViT-B-32",
    pretrained: str = "laion2b_s34b_b79k",
    weights: Path | None = None,
    threads: int = 0,
    random_weights: bool = False,
) -> CLIP:
    return CLIP(
        arch=arch,
        pretrained=pretrained,
        weights=weights,
        threads=threads,
        random_weights=random_weights,
    )
