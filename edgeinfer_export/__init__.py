"""edgeinfer_export: export your own PyTorch RNN/LSTM/GRU to one edgeinfer file (the `export` extra).

    import edgeinfer_export as ee
    ee.export(model, "model.onnx", input=ee.Features(6, mean=mu, std=sd), output=ee.Classes(["walk", "run"]),
              example=x_val)

`export` finds the module's parts (embedding, per-step layers, recurrent modules, head) or uses
its streaming protocol, refuses what cannot be streamed cell by cell (naming the part), checks
parity, and writes nothing unless every check passes. See docs/export.md.
"""
from edgeinfer_export.api import (
    Chars,
    Classes,
    Exported,
    Features,
    Int8,
    Values,
    Words,
    accuracy,
    export,
    mean_squared_error,
)
from edgeinfer_export.errors import ExportError
from edgeinfer_export.parts import Parts

__all__ = ["Chars", "Classes", "ExportError", "Exported", "Features", "Int8", "Parts", "Values", "Words", "accuracy",
           "export", "mean_squared_error"]
