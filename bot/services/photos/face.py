"""Face landmarks and person segmentation behind a small interface, so the engine can be swapped.

The chosen engine is MediaPipe 0.10.21 (legacy ``solutions`` API): its wheel ships FaceMesh with
iris refinement (478 points) and selfie segmentation, so nothing is downloaded at run time.
docs/photos.md records the measurements behind the choice and what a replacement must provide.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
ImageArray = npt.NDArray[np.uint8]


class FaceEngineError(RuntimeError):
    """The engine is not installed or failed to load its bundled models."""


@dataclass(frozen=True, slots=True)
class Face:
    """Landmarks of one face in pixels of the analysed image, FaceMesh numbering (478 points)."""

    points: FloatArray

    def p(self, index: int) -> tuple[float, float]:
        x, y = self.points[index]
        return float(x), float(y)


class FaceEngine(Protocol):
    name: str

    def faces(self, rgb: ImageArray) -> list[Face]:
        """All faces found (at most a few), largest first."""
        ...

    def person_mask(self, rgb: ImageArray) -> FloatArray:
        """Per-pixel person probability in [0, 1], same height and width as ``rgb``."""
        ...


class MediapipeEngine:
    """FaceMesh (refine_landmarks: iris points 468-477) plus the general selfie-segmentation model."""

    name = "mediapipe-0.10.21"

    def __init__(self) -> None:
        # Quiet the C++ glog/TFLite start-up chatter; must be set before the first import.
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            # mediapipe ships no type information; its two classes are wrapped and typed here.
            from mediapipe.python.solutions import face_mesh, selfie_segmentation  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise FaceEngineError(f"mediapipe is not importable: {exc}") from exc
        self._mesh: Any = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=3,
                                             refine_landmarks=True, min_detection_confidence=0.5)
        self._seg: Any = selfie_segmentation.SelfieSegmentation(model_selection=0)
        # A MediaPipe graph is not re-entrant; threads share one engine and take turns on it.
        self._lock = threading.Lock()

    def faces(self, rgb: ImageArray) -> list[Face]:
        h, w = rgb.shape[:2]
        with self._lock:
            result = self._mesh.process(np.ascontiguousarray(rgb))
        found = []
        for lm in result.multi_face_landmarks or ():
            pts = np.array([(p.x * w, p.y * h) for p in lm.landmark], dtype=np.float32)
            found.append(Face(pts))
        return sorted(found, key=lambda f: -float(np.ptp(f.points[:, 0])))

    def person_mask(self, rgb: ImageArray) -> FloatArray:
        with self._lock:
            result = self._seg.process(np.ascontiguousarray(rgb))
        mask: FloatArray = np.asarray(result.segmentation_mask, dtype=np.float32)
        return mask


@functools.cache
def default_engine() -> FaceEngine:
    """One engine per process: loading costs ~2 s and ~170 MB, so a worker loads it once."""
    return MediapipeEngine()
