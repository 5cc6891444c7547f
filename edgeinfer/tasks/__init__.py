"""Task modules: what each task does with a loaded model (digits, sentiment, characters).

Each takes a `LoadedModel` (the `Model` facade is one) and builds on streams and the sequence
graph; none imports the facade. A new task adds a module here, its input kind in the spec,
and its methods on `Model`.
"""
