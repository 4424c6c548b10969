"""Stage 1: load documents, index schema resources, resolve references."""
from .loader import Loader, NodeInfo  # noqa: F401
