"""Pixel measures shared by the checks: colour spaces, polygon masks and the normalised face view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from bot.services.photos.face import Face

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
Bools = npt.NDArray[np.bool_]
Arr = npt.NDArray[Any]

# FaceMesh indices (mediapipe face_mesh_connections / canonical mesh).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
EYE_A = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_B = (362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398)
BROW_A = (46, 53, 52, 65, 55, 107, 66, 105, 63, 70)
BROW_B = (276, 283, 282, 295, 285, 336, 296, 334, 293, 300)
LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
IRIS_A, IRIS_B = 468, 473
CHEEK_A, CHEEK_B = 234, 454  # face-width points, image-left and image-right for a frontal face
CHEEK_SKIN_A, CHEEK_SKIN_B = 205, 425
FOREHEAD, CHIN, NOSE_TIP = 10, 152, 1
VIEW_FACE_WIDTH = 240  # face-region measures run on a copy scaled to this cheek width


def luma(rgb: U8 | F32) -> F32:
    out: F32 = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32)
    return out


_LINEAR = np.where(np.arange(256) / 255 <= 0.04045, np.arange(256) / 255 / 12.92,
                   ((np.arange(256) / 255 + 0.055) / 1.055) ** 2.4).astype(np.float32)
_XYZ = (np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
        / np.array([[0.95047], [1.0], [1.08883]])).T.astype(np.float32)


def srgb_to_lab(rgb: npt.ArrayLike) -> F32:
    """CIELAB (D65) of sRGB values in 0..255; any leading shape. 8-bit input takes a lookup table."""
    arr = np.asarray(rgb)
    if arr.dtype == np.uint8:
        lin = _LINEAR[arr]
    else:
        c = np.clip(arr.astype(np.float32), 0, 255) / 255.0
        lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)
    xyz = lin @ _XYZ
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    lab: F32 = np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
                        -1).astype(np.float32)
    return lab


def delta_e(a: npt.ArrayLike, b: npt.ArrayLike) -> F32:
    out: F32 = np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32), axis=-1).astype(np.float32)
    return out


def polygon(shape: tuple[int, ...], points: npt.ArrayLike) -> Bools:
    canvas = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in np.asarray(points)], fill=1)
    return np.asarray(canvas, dtype=bool)


def box(shape: tuple[int, ...], x0: float, y0: float, x1: float, y1: float) -> Bools:
    out = np.zeros(shape[:2], dtype=bool)
    h, w = shape[:2]
    out[max(0, int(y0)):max(0, min(h, int(y1))), max(0, int(x0)):max(0, min(w, int(x1)))] = True
    return out


def window(arr: npt.NDArray[Any], x0: float, y0: float, x1: float, y1: float) -> npt.NDArray[Any]:
    """The rectangle's pixels as a view (clipped to the array), without a full-size mask."""
    h, w = arr.shape[:2]
    return arr[max(0, int(y0)):max(0, min(h, int(y1))), max(0, int(x0)):max(0, min(w, int(x1)))]


def laplacian_var(gray: F32, mask: Bools | None = None) -> float:
    lap = (-4 * gray[1:-1, 1:-1] + gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:])
    if mask is not None:
        lap = lap[mask[1:-1, 1:-1]]
    return float(lap.var()) if lap.size else 0.0


def dist(face: Face, a: int, b: int) -> float:
    return float(np.hypot(*(face.points[a] - face.points[b])))


@dataclass(frozen=True, slots=True)
class FaceGeometry:
    """Where the face is, in analysis-image pixels."""

    eye_a: tuple[float, float]  # image-left iris
    eye_b: tuple[float, float]
    width: float  # cheek to cheek
    roll: float  # degrees, positive = clockwise in the image
    crown: float  # top of the head (hair or covering) from segmentation, y

    @property
    def eye_mid(self) -> tuple[float, float]:
        return (self.eye_a[0] + self.eye_b[0]) / 2, (self.eye_a[1] + self.eye_b[1]) / 2


def face_geometry(face: Face, mask: F32 | None) -> FaceGeometry:
    a, b = sorted((face.p(IRIS_A), face.p(IRIS_B)))
    roll = float(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])))
    return FaceGeometry(a, b, dist(face, CHEEK_A, CHEEK_B), roll, crown_row(face, mask))


def crown_row(face: Face, mask: F32 | None) -> float:
    """Top row of the person mask over the central half of the face; a landmark estimate without one."""
    top, chin = face.p(FOREHEAD)[1], face.p(CHIN)[1]
    estimate = top - 0.45 * (chin - top)
    if mask is None:
        return estimate
    xs = sorted((face.p(CHEEK_A)[0], face.p(CHEEK_B)[0]))
    quarter = (xs[1] - xs[0]) / 4
    band = mask[: max(1, int(top)), max(0, int(xs[0] + quarter)):max(1, int(xs[1] - quarter))] > 0.5
    rows = np.flatnonzero(band.any(axis=1)) if band.size else np.empty(0)
    return float(rows[0]) if rows.size else estimate


@dataclass(frozen=True, slots=True)
class FaceView:
    """The face region rescaled to a cheek width of 240 px, with its landmark masks."""

    rgb: U8
    lum: F32
    points: F32
    oval: Bools
    eyes: tuple[Bools, Bools]
    mouth_inner: Bools
    skin: Bools
    cheeks: tuple[Bools, Bools]

    def pt(self, index: int) -> tuple[float, float]:
        x, y = self.points[index]
        return float(x), float(y)


def face_view(rgb: U8, face: Face) -> FaceView:
    pts = face.points
    scale = VIEW_FACE_WIDTH / max(dist(face, CHEEK_A, CHEEK_B), 1.0)
    x0, y0 = np.maximum(pts.min(axis=0) - 0.15 * (pts.max(axis=0) - pts.min(axis=0)), 0).astype(int)
    x1, y1 = np.minimum(pts.max(axis=0) + 0.15 * (pts.max(axis=0) - pts.min(axis=0)),
                        (rgb.shape[1], rgb.shape[0])).astype(int)
    region = Image.fromarray(rgb[y0:y1, x0:x1])
    size = (max(8, round((x1 - x0) * scale)), max(8, round((y1 - y0) * scale)))
    view = np.asarray(region.resize(size, Image.Resampling.BILINEAR))
    local = ((pts - (x0, y0)) * (size[0] / max(x1 - x0, 1), size[1] / max(y1 - y0, 1))).astype(np.float32)
    return _masks(view, local)


def _masks(view: U8, local: F32) -> FaceView:
    shape = view.shape
    oval = polygon(shape, local[list(FACE_OVAL)])
    eyes = (polygon(shape, local[list(EYE_A)]), polygon(shape, local[list(EYE_B)]))
    holes = eyes[0] | eyes[1] | polygon(shape, local[list(LIPS_OUTER)])
    holes |= polygon(shape, local[list(BROW_A)]) | polygon(shape, local[list(BROW_B)])
    boxes = _eye_boxes(shape, local, 0.6)
    holes |= boxes[0] | boxes[1]
    r = VIEW_FACE_WIDTH * 0.07
    centres = sorted((local[CHEEK_SKIN_A], local[CHEEK_SKIN_B]), key=lambda p: float(p[0]))
    left, right = (box(shape, x - r, y - r, x + r, y + r) & oval for x, y in centres)
    return FaceView(view, luma(view), local, oval, eyes, polygon(shape, local[list(LIPS_INNER)]),
                    oval & ~holes, (left, right))


def _eye_boxes(shape: tuple[int, ...], local: F32, grow: float) -> tuple[Bools, Bools]:
    out = []
    for idx in (EYE_A, EYE_B):
        p = local[list(idx)]
        (x0, y0), (x1, y1) = p.min(axis=0), p.max(axis=0)
        gx, gy = (x1 - x0) * grow / 2, (y1 - y0) * grow + (x1 - x0) * 0.15
        out.append(box(shape, x0 - gx, y0 - gy, x1 + gx, y1 + gy))
    return out[0], out[1]


def eye_boxes(view: FaceView, grow: float = 0.4) -> tuple[Bools, Bools]:
    """Boxes around each eye large enough to hold a spectacle lens's reflection."""
    return _eye_boxes(view.rgb.shape, view.points, grow)
