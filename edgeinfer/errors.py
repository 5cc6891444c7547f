"""Typed exceptions of the runtime. Every message is one line that names the problem and the fix."""
from __future__ import annotations


class EdgeInferError(Exception):
    """Base class of every error edgeinfer raises on purpose."""


class ModelFileError(EdgeInferError):
    """The model file is missing, not ONNX, truncated, or cannot be loaded."""


class SpecError(EdgeInferError):
    """The ONNX file has no edgeinfer spec, or the spec is invalid or of a newer format."""


class WrongTaskError(EdgeInferError):
    """The model is for another task than the one requested."""


class ProviderError(EdgeInferError):
    """A requested execution provider is not available."""


class InputError(EdgeInferError):
    """Input data of the wrong shape, type or value."""


class ImageError(InputError):
    """An image file that cannot be read or holds no digit."""


class UnreadableInput(InputError):
    """An input the command was given cannot be read: missing, a folder, unreadable, empty or not
    UTF-8 (the CLI's exit code 1, as for every input that cannot be answered)."""
