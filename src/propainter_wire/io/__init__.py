"""Input and output: clips (image folders, videos), masks, result files.

Every problem with the user's files is raised as ``InputError`` naming the path.
"""

from .frames import (
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
from .masks import MaskSource, binarize, dilate, mask_to_grey, open_masks
from .output import (
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
from .source import FrameSource
from .video import VideoFrames

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
