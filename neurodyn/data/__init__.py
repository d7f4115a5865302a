"""Neural recordings: the Recording container, NWB input/output, synthetic ground-truth data."""

from .nwb import load_nwb, save_nwb
from .recording import Recording
from .synthetic import synthetic_recording

__all__ = ["Recording", "load_nwb", "save_nwb", "synthetic_recording"]
