"""Wire masks from a few clicks, and key masks carried by optical flow.

Public API: ``make_wire_masks``, ``track_masks``, ``masks_for_inpaint``,
``wire_masks_array``; CLI hooks in ``propainter_wire.wires.cli``. See docs/wires.md.
"""

from .api import make_wire_masks, masks_for_inpaint, track_masks, wire_masks_array

__all__ = ["make_wire_masks", "masks_for_inpaint", "track_masks", "wire_masks_array"]
