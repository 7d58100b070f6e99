"""prunex: a deployment compiler for CNNs with learned connectivity."""

from prunex.models import create_model, list_models
from prunex.passes import compress
from prunex.passes.serialization import load_compressed

__version__ = "0.1.0"

__all__ = ["__version__", "compress", "create_model", "list_models", "load_compressed"]
