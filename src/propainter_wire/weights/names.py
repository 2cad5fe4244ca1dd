"""The three checkpoint files of the ProPainter engine (release v0.1.0 of the official project)."""

RAFT_FILE = "raft-things.pth"
FLOW_COMPLETION_FILE = "recurrent_flow_completion.pth"
INPAINTER_FILE = "ProPainter.pth"
CHECKPOINT_FILES = (RAFT_FILE, FLOW_COMPLETION_FILE, INPAINTER_FILE)
