"""edgeinfer: run small recurrent models cell by cell on onnxruntime."""
from edgeinfer.errors import (
    EdgeInferError, ImageError, InputError, ModelFileError, ProviderError, SpecError, WrongTaskError,
)
from edgeinfer.model import Model, builtin_models, load
from edgeinfer.session import available_providers
from edgeinfer.spec import ModelSpec
from edgeinfer.stream import Stream

__all__ = [
    "EdgeInferError", "ImageError", "InputError", "Model", "ModelFileError", "ModelSpec",
    "ProviderError", "SpecError", "Stream", "WrongTaskError", "available_providers",
    "builtin_models", "load",
]
__version__ = "0.1.0"
