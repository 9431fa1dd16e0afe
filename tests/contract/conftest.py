"""The contract suite's own signal (see `toy_signal`), registered only where a test asks."""

from tests.contract.toy_signal import thumb_signal

__all__ = ["thumb_signal"]
