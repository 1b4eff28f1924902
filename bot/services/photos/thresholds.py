"""Start values of every threshold (reference/photos.md §6.1), calibrated as docs/photos.md describes.

One place, so a calibration run changes numbers here and nowhere else.
"""

from __future__ import annotations

# --- pixels and file (no face needed) ---
COMPRESSION_QUALITY_WARN = 75  # estimated JPEG quality below this: the student sent a recompressed copy
COMPRESSION_SIDE_WARN = 1000  # long side below this (and not already the profile's size)
SATURATION_MIN = 15.0  # mean HSV saturation (0-255) of a colour photo
BORDER_STRIP = 0.02  # outer strip width, share of the side
BORDER_FLAT_STD = 4.0  # a strip this flat (luma std) ...
BORDER_DELTA_E = 10.0  # ... and this different from the next strip inwards is a border
MOIRE_PEAK_SHARE = 0.2  # share of high-frequency power in the 8 strongest bins
EDIT_SOFTWARE = ("meitu", "美图", "醒图", "xingtu", "photoshop", "snapseed", "b612", "faceu", "beautycam",
                 "美颜", "faceapp", "picsart", "lightroom", "retouch", "facetune", "天天p图", "broadcast")

# --- face and pose ---
RESOLUTION_OK = 240.0  # cheek width in source pixels for a 480-wide output without upscaling
RESOLUTION_MIN = 180.0  # below this the output would be upscaled by more than 1.33×
ROLL_MAX = 3.0  # degrees; the spec forbids rotating, so a tilted head must be retaken
YAW_MAX = 0.06  # nose-tip offset from the cheek midpoint / face width
PITCH_RANGE = (0.28, 0.50)  # (nose tip - eye line) / (chin - eye line)
EYES_OPEN_MIN = 0.18  # lid gap / eye width, the smaller eye
MOUTH_GAP_MAX = 0.05  # inner-lip gap / mouth width
TEETH_MAX = 0.08  # share of bright, unsaturated pixels between the inner lips

# --- light ---
EXPOSURE_MEAN = (0.30, 0.85)  # face-skin luma mean / 255
CLIPPED_MAX = 0.02  # share of face pixels at <= 25 or >= 247 (OFIQ bands)
HIGHLIGHT_LUMA = 245.0
HIGHLIGHT_MAX = 0.015  # share of face-skin pixels at >= 245
LIGHTING_DIFF_MAX = 20.0  # left vs right cheek median luma (0-255)
GLARE_MAX = 0.03  # share of eye-box pixels at >= 245
TINT_RATIO_MIN = 0.45  # eye-box luma / cheek luma; lower means dark lenses
SHARPNESS_MIN = 15.0  # Laplacian variance of the face at 240 px cheek width, contrast-normalised
BEAUTY_RATIO_MAX = 0.13  # skin / eye-region Laplacian energy, only without camera EXIF

# --- background and clothing ---
BACKGROUND_DELTA_E = 15.0  # ΔE76 of the background median to the nearest allowed colour
UNIFORM_DELTA_E = 10.0
UNIFORM_SHARE_MIN = 0.90  # share of background pixels within UNIFORM_DELTA_E of its median
SIDE_DELTA_E_MAX = 8.0  # left vs right vs top background medians
BACKGROUND_MIN_SHARE = 0.05  # too little background visible to judge
CLOTHING_DELTA_E_MIN = 20.0
HEAD_COVER_RATIO = 0.62  # (forehead landmark - crown) / (chin - forehead); taller means a hat or bun
HEAD_COVER_DELTA_E = 20.0  # crown region vs hair band colour jump
HAIR_SKIN_SHARE_MIN = 0.25  # skin-like share of the band above the brows and beside the ears
