import os

# Two cores: keep torch and onnxruntime from oversubscribing them in tests.
os.environ.setdefault("OMP_NUM_THREADS", "2")
