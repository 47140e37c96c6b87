"""The paper's architectures in plain torch, ONNX export and synthetic data."""
