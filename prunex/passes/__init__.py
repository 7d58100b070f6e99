"""The compiler: freeze the gates, trace to torch.fx, run small verified passes, emit standard layers."""

from prunex.passes.pipeline import CompressOptions, compress, default_passes
from prunex.passes.runner import PassRecord, PassRunner, PassVerificationError

__all__ = ["CompressOptions", "PassRecord", "PassRunner", "PassVerificationError", "compress", "default_passes"]
