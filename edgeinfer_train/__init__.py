"""edgeinfer_train: streaming classifiers trained from your own sequence files (the `train` extra).

    edgeinfer-train sequences train.csv --test test.csv --out model.onnx

Readers for CSV/TSV, folders per label, .npz and UEA/UCR .ts (edgeinfer_train.data), checks that
refuse unusable data before training, a GRU/LSTM trained to answer after every step, early
stopping on validation, resume after a kill, and the export through edgeinfer_export.
"""
from edgeinfer_train.data import DataError, Sequences, read
from edgeinfer_train.trainer import Settings, Summary, train

__all__ = ["DataError", "Sequences", "Settings", "Summary", "read", "train"]
