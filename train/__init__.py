"""Training: data loaders, the recurrent model family and the training loop (PyTorch)."""
