"""Export: ONNX sequence and step graphs with the spec inside, quantization, parity checks."""
