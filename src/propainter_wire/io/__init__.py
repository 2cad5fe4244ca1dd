"""Input and output: clips (image folders, videos), masks, result files.

Every problem with the user's files is raised as ``InputError`` naming the path.
"""

import os

# OpenCV only reads/writes EXR when this is set before its codecs are first used.
os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")

from .frames import (  # noqa: E402
    IMAGE_EXTS,
    VIDEO_EXTS,
    FolderFrames,
    image_size,
    list_images,
    natural_key,
    open_frames,
    read_image,
    to_rgb,
)
from .masks import MaskSource, binarize, dilate, mask_to_grey, open_masks  # noqa: E402
from .output import (  # noqa: E402
    FRAMES_DIR,
    MANIFEST_NAME,
    OUTPUT_ENTRIES,
    REPORT_NAME,
    VIDEO_NAME,
    VideoWriter,
    prepare_output_dir,
    write_image,
    write_json,
)
from .source import FrameSource  # noqa: E402
from .video import VideoFrames  # noqa: E402

__all__ = [
    "FRAMES_DIR",
    "IMAGE_EXTS",
    "MANIFEST_NAME",
    "OUTPUT_ENTRIES",
    "REPORT_NAME",
    "VIDEO_EXTS",
    "VIDEO_NAME",
    "FolderFrames",
    "FrameSource",
    "MaskSource",
    "VideoFrames",
    "VideoWriter",
    "binarize",
    "dilate",
    "image_size",
    "list_images",
    "mask_to_grey",
    "natural_key",
    "open_frames",
    "open_masks",
    "prepare_output_dir",
    "read_image",
    "to_rgb",
    "write_image",
    "write_json",
]
