"""tests/export: tiny nets exported on the fly (tests/nets.py), not the committed fixtures."""
from tests.nets import make_model, sentiment_model

__all__ = ["make_model", "sentiment_model"]
