"""Newer op versions that only widened the allowed types reuse onnx2torch's converter for the older version."""

from __future__ import annotations


from .registry import add_converter, converter_for

# (op, new version, version whose converter it reuses). Each pair was checked against onnx.defs: same
# attributes, inputs and outputs, same doc, only more types (bfloat16, float8, int4, float4, int2, ...).
# Cast-19 adds `saturate` and Cast-24 `round_mode`; both only act on float8 targets, which onnx2torch's
# Cast refuses with NotImplementedError anyway. ScatterND-18 is left out: it adds reductions.
ALIASES: list[tuple[str, int, int]] = [
    ("Conv", 22, 11), ("ConvTranspose", 22, 11), ("GlobalAveragePool", 22, 1), ("Dropout", 22, 13),
    ("Elu", 22, 6), ("Selu", 22, 6), ("HardSigmoid", 22, 6), ("HardSwish", 22, 14),
    ("Softplus", 22, 1), ("Softsign", 22, 1), ("Round", 22, 11), ("EyeLike", 22, 9),
    ("Sin", 22, 7), ("Cos", 22, 7), ("Tan", 22, 7), ("Asin", 22, 7), ("Acos", 22, 7), ("Atan", 22, 7),
    ("InstanceNormalization", 22, 6), ("RoiAlign", 22, 16),
    ("Cast", 19, 13), ("Cast", 21, 13), ("Cast", 23, 13), ("Cast", 24, 13), ("Cast", 25, 13),
    ("Constant", 19, 13), ("Constant", 21, 13), ("Constant", 23, 13), ("Constant", 24, 13), ("Constant", 25, 13),
    ("ConstantOfShape", 20, 9), ("ConstantOfShape", 21, 9), ("ConstantOfShape", 23, 9),
    ("ConstantOfShape", 24, 9), ("ConstantOfShape", 25, 9),
    ("Equal", 19, 13), ("GreaterOrEqual", 16, 12), ("LessOrEqual", 16, 12), ("IsInf", 20, 10), ("IsNaN", 20, 13),
    ("Flatten", 21, 13), ("Flatten", 23, 13), ("Flatten", 24, 13), ("Flatten", 25, 13),
    ("Identity", 19, 16), ("Identity", 21, 16), ("Identity", 23, 16), ("Identity", 24, 16), ("Identity", 25, 16),
    ("Reshape", 19, 14), ("Reshape", 21, 14), ("Reshape", 23, 14), ("Reshape", 24, 14), ("Reshape", 25, 14),
    ("Shape", 19, 15), ("Shape", 21, 15), ("Shape", 23, 15), ("Shape", 24, 15), ("Shape", 25, 15),
    ("Transpose", 21, 13), ("Transpose", 23, 13), ("Transpose", 24, 13), ("Transpose", 25, 13),
    ("Unsqueeze", 21, 13), ("Unsqueeze", 23, 13), ("Unsqueeze", 24, 13), ("Unsqueeze", 25, 13),
    ("Squeeze", 23, 21), ("Squeeze", 24, 21), ("Squeeze", 25, 21),
    ("TopK", 24, 11),
]

for _op, _new, _old in ALIASES:
    add_converter(_op, _new)(converter_for(_op, _old))
