"""The quality harness: clips with a known ground truth, the methods compared, the scores.

- :mod:`.synth`: procedural clips and synthetic wires / masks drawn over footage.
- :mod:`.metrics`: PSNR, SSIM (optionally inside a mask) and the warping error.
- :mod:`.cases`, :mod:`.methods`, :mod:`.report`, :mod:`.evaluate`: the ``evaluate`` command.
- :mod:`.demo`: the ``demo`` command (wires removed from a generated clip, scored).

Nothing is imported here: each command loads only the modules it needs.
"""
