"""Reading masks: which pixels of each frame to fill.

A mask is given as a folder of images (one per frame, or a single one for the
whole clip), a single image (static mask) or a mask video. Each is turned into a
``(H, W)`` bool array at the frame size: ``True`` where a pixel must be filled.

Grey value of a mask pixel (the reference reads masks with PIL ``convert('L')``):

- grey images: the value itself;
- RGB and palette images: ITU-R 601 luma of the (palette) colour, in PIL's integer
  arithmetic ``(19595 R + 38470 G + 7471 B + 32768) >> 16``;
- images with alpha: the luma of the colour, like PIL; but when the colour carries
  no information (the luma is the same everywhere) and the alpha varies, the alpha
  is the mask (a stroke painted on a transparent layer).

A pixel is masked when its grey value is above ``threshold`` (0..254 on the 8-bit
scale; ``threshold * 257`` for 16-bit masks, ``threshold / 255`` for float masks).
``threshold=0`` is the reference's rule: every non-zero pixel is masked. Use a
higher threshold for anti-aliased masks and masks stored in lossy video.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InputError
from .frames import IMAGE_EXTS, VIDEO_EXTS, list_images, read_image
from .source import LOSSY_EXTS

log = logging.getLogger("propainter_wire")

# A mask of another size is resized when its aspect ratio is within this fraction of the frame's.
ASPECT_TOLERANCE = 0.01

# PIL's fixed-point ITU-R 601 luma weights (sum 65536).
_LUMA_WEIGHTS = (19595, 38470, 7471)


def mask_to_grey(image: np.ndarray) -> np.ndarray:
    """Grey value of each pixel of a ``read_image`` result (see the module doc).

    Args:
        image: ``(H, W)``, ``(H, W, 2|3|4)``; ``uint8``, ``uint16`` or ``float32``.

    Returns:
        ``(H, W)`` in the input's sample type and scale.
    """
    if image.ndim == 2:
        return image
    channels = image.shape[2]
    if channels == 2:  # grey + alpha
        grey, alpha = image[:, :, 0], image[:, :, 1]
    else:
        grey = _luma(image[:, :, :3])
        alpha = image[:, :, 3] if channels == 4 else None
    if alpha is not None and grey.min() == grey.max() and alpha.min() != alpha.max():
        return alpha
    return grey


def _luma(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` -> ``(H, W)`` ITU-R 601 luma; integer images rounded like PIL."""
    if rgb.dtype == np.float32:
        return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    wide = rgb.astype(np.int64)
    weighted = wide[:, :, 0] * _LUMA_WEIGHTS[0] + wide[:, :, 1] * _LUMA_WEIGHTS[1] + wide[:, :, 2] * _LUMA_WEIGHTS[2]
    return ((weighted + 32768) >> 16).astype(rgb.dtype)


def binarize(grey: np.ndarray, threshold: int = 0) -> np.ndarray:
    """``(H, W)`` grey -> bool: above ``threshold`` on the 8-bit scale (scaled for 16-bit/float)."""
    if grey.dtype == np.uint16:
        return grey > threshold * 257
    if grey.dtype == np.float32:
        return grey > threshold / 255.0
    return grey > threshold


def dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Binary dilation by the 3x3 cross, ``iterations`` times (``0``: the mask unchanged).

    Identical to ``scipy.ndimage.binary_dilation(mask, iterations=iterations)`` for
    ``iterations >= 1``: pixels outside the image never dilate into it.

    Args:
        mask: ``(H, W)``; non-zero is masked.
        iterations: number of one-pixel growth steps (city-block radius in pixels).

    Returns:
        ``(H, W)`` bool.
    """
    import cv2

    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    grown = (np.asarray(mask) != 0).astype(np.uint8)
    if iterations == 0 or not grown.any():
        return grown.astype(bool)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    # Constant 0 border: nothing outside the image is masked.
    grown = cv2.dilate(grown, cross, iterations=iterations, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return grown.astype(bool)


class MaskSource:
    """Masks of a clip, read on access.

    Attributes:
        path: the folder, image, sequence or video the masks come from.
        kind: ``'folder'``, ``'image'`` or ``'video'``.
        static: one mask for every frame.
        height, width: the frame size the masks are delivered at (pixels).
        threshold: ``--mask-threshold`` (0..1, or 1..254 on the 8-bit scale).
        channel, invert: ``--mask-channel`` and ``--invert-mask``.
        soft: soft mattes come back as float32 weights (lossless files only; lossy ones are hard).
        order: for each frame, the index of its mask file (pairing by frame number), or None (by position).
        origin: the frames' data-window corner in their display window; a matte whose data window
            differs is placed by its own corner (overscan plates, cropped mattes).
    """

    def __init__(self, path: Path, kind: str, count: int, num_frames: int, height: int, width: int,
                 threshold: float, files: list[Path] | None = None, video=None, channel: str | None = None,
                 invert: bool = False, soft: bool = False, order: list[int] | None = None,
                 origin: tuple[int, int] = (0, 0)):
        self.path = path
        self.kind = kind
        self.static = count == 1
        self.num_frames = num_frames
        self.height = height
        self.width = width
        self.threshold = threshold
        self.channel, self.invert, self.soft = channel, invert, soft
        self.order = order
        self.origin = origin
        self._files = files
        self._video = video
        self._static_mask: np.ndarray | None = None
        self._warned = False

    @property
    def dtype(self) -> np.dtype:
        """``bool``, or ``float32`` where soft mattes may come (weights in (0, 1] on masked pixels)."""
        return np.dtype(np.float32 if self.soft else bool)

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, index: int) -> np.ndarray:
        """Mask of frame ``index``: ``(H, W)`` bool ``True`` where to fill (float32 weights for a soft matte)."""
        if not -self.num_frames <= index < self.num_frames:
            raise IndexError(f"mask {index} out of range (clip has {self.num_frames})")
        index %= self.num_frames
        if self.static:
            if self._static_mask is None:
                self._static_mask = self._load(0)
            return self._static_mask.copy()
        return self._load(self.order[index] if self.order is not None else index)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def read_all(self) -> np.ndarray:
        """``(T, H, W)`` bool (float32 for soft mattes)."""
        out = np.empty((self.num_frames, self.height, self.width), dtype=self.dtype)
        for i in range(self.num_frames):
            out[i] = self[i]
        return out

    def close(self) -> None:
        if self._video is not None:
            self._video.close()

    def __enter__(self) -> MaskSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _load(self, index: int) -> np.ndarray:
        from .mattes import choose_channel, matte_mask

        if self._video is not None:
            source = self.path
            pixels, names, corner = self._video[index], ("R", "G", "B"), None
        else:
            from .oiio import read_channels

            source = self._files[index]
            if source.suffix.lower() in (".jpg", ".jpeg"):  # ringing: the legacy grey rule, hard
                pixels, names, corner = read_image(source), None, None
            else:
                pixels, names, spec = read_channels(source)
                corner = (int(spec.x), int(spec.y))
        grey = mask_to_grey(pixels) if names is None else choose_channel(pixels, names, self.channel, source)
        lossless = self._video is None and source.suffix.lower() not in LOSSY_EXTS
        mask = matte_mask(grey, self.threshold, self.invert, soft=self.soft and lossless)
        if corner is not None and corner != self.origin and mask.shape != (self.height, self.width):
            mask = _place(mask, corner, self.origin, (self.height, self.width))
        return self._fit(mask, source)

    def _fit(self, mask: np.ndarray, source: Path) -> np.ndarray:
        """Bring a mask to the frame size: equal, or same aspect ratio -> nearest resize."""
        import cv2

        mh, mw = mask.shape
        if (mh, mw) == (self.height, self.width):
            return mask
        frame_aspect = self.width / self.height
        if abs(mw / mh - frame_aspect) > ASPECT_TOLERANCE * frame_aspect:
            raise InputError(f"mask is {mw}x{mh} but the frames are {self.width}x{self.height} "
                             "(different aspect ratio: cannot resize)", source)
        if not self._warned:
            log.warning("%s: mask is %dx%d, frames are %dx%d: resizing the mask (nearest)",
                        source, mw, mh, self.width, self.height)
            self._warned = True
        resized = cv2.resize(mask.astype(np.float32 if mask.dtype != bool else np.uint8), (self.width, self.height),
                             interpolation=cv2.INTER_NEAREST_EXACT)
        return resized.astype(mask.dtype)

    def __repr__(self) -> str:
        return (f"MaskSource({str(self.path)!r}, kind={self.kind}, static={self.static}, frames={self.num_frames}, "
                f"size={self.width}x{self.height}, threshold={self.threshold})")


def _place(mask: np.ndarray, corner: tuple[int, int], origin: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """A matte over its own data window (``corner``: x, y) moved onto the frames' (``origin``, ``size``)."""
    out = np.zeros(size, dtype=mask.dtype)
    dx, dy = corner[0] - origin[0], corner[1] - origin[1]
    y0, x0 = max(dy, 0), max(dx, 0)
    y1, x1 = min(dy + mask.shape[0], size[0]), min(dx + mask.shape[1], size[1])
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = mask[y0 - dy : y1 - dy, x0 - dx : x1 - dx]
    return out


def open_masks(path: str | Path, num_frames: int, height: int, width: int, threshold: float = 0,
               numbers: list[int] | None = None, channel: str | None = None, invert: bool = False,
               soft: bool = False, origin: tuple[int, int] = (0, 0)) -> MaskSource:
    """Open the masks of a clip of ``num_frames`` frames of ``height`` x ``width`` pixels.

    Args:
        path: a folder of mask images or a ``name.####.ext`` sequence (one per frame, or a single
            image for all), one image, or a mask video.
        threshold: ``--mask-threshold``: 0..1, or 1..254 on the 8-bit scale.
        numbers: the frames' numbers: a numbered matte sequence pairs with them by number.
        channel, invert, soft, origin: see :class:`MaskSource`.

    Raises:
        InputError: missing path, no images, a frame without its matte (named by number), count
            neither 1 nor ``num_frames``, unsupported extension, unreadable mask, size of another
            aspect ratio.
    """
    from .frames import natural_key
    from .sequence import find_sequence, is_pattern, pair_by_number

    path = Path(path).expanduser()
    options = dict(channel=channel, invert=invert, soft=soft, origin=origin)
    if not path.exists() and not is_pattern(path):
        raise InputError("no such mask file or folder", path)
    if path.is_dir() or is_pattern(path):
        seq = find_sequence(path, IMAGE_EXTS, natural_key)
        if not len(seq):
            list_images(path)  # the reason, named
        order = None
        if numbers is not None and seq.numbers is not None and len(seq) > 1:
            order = pair_by_number(tuple(numbers), seq.numbers, path)
        else:
            _check_count(path, len(seq), num_frames)
        source = MaskSource(path, "folder", len(seq), num_frames, height, width, threshold, files=list(seq.files),
                            order=order, **options)
    else:
        ext = path.suffix.lower()
        if ext in IMAGE_EXTS:
            source = MaskSource(path, "image", 1, num_frames, height, width, threshold, files=[path], **options)
        elif ext in VIDEO_EXTS:
            from .video import VideoFrames

            video = VideoFrames(path)
            _check_count(path, len(video), num_frames)
            source = MaskSource(path, "video", len(video), num_frames, height, width, threshold, video=video,
                                **options)
        else:
            raise InputError(f"unsupported mask extension '{path.suffix}' (a folder, an image "
                             f"{', '.join(IMAGE_EXTS)} or a video {', '.join(VIDEO_EXTS)})", path)
    source[0]  # fail now on an unreadable first mask or a size of another aspect ratio
    return source


def _check_count(path: Path, count: int, num_frames: int) -> None:
    if count not in (1, num_frames):
        raise InputError(f"{count} masks for {num_frames} frames (give one mask per frame, or a single mask)", path)
