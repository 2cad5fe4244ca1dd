"""Delivery: masters with timecode and audio (master, codecs, timing), review outputs (review),
regrain (grain), CLI options (options)."""
