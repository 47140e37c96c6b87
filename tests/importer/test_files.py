"""A model read from disk: its external data read tensor by tensor, from the model's folder only."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from kinetoscope.server.importer import InvalidModel, import_model
from kinetoscope.server.importer.files import FileBlob, open_model_files


def _write_chain(folder, weights: list[np.ndarray], declared_bytes: int | None = None):
    """1×1 convs whose weights share one external file, at increasing offsets."""
    nodes, inits, offset, previous = [], [], 0, "x"
    with open(folder / "weights.bin", "wb") as blob:
        for index, weight in enumerate(weights):
            tensor = TensorProto(name=f"w{index}", data_type=TensorProto.FLOAT, dims=list(weight.shape),
                                 data_location=TensorProto.EXTERNAL)
            length = declared_bytes if declared_bytes is not None else weight.nbytes
            for key, value in (("location", "weights.bin"), ("offset", str(offset)), ("length", str(length))):
                tensor.external_data.add(key=key, value=value)
            inits.append(tensor)
            blob.write(weight.tobytes())
            offset += weight.nbytes
            out = "y" if index == len(weights) - 1 else f"h{index}"
            nodes.append(helper.make_node("Conv", [previous, tensor.name], [out], name=f"conv{index}"))
            previous = out
    channels = weights[0].shape[1]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 2, 2])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    path = folder / "chain.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_a_file_blob_reads_the_span_asked_for(tmp_path) -> None:
    (tmp_path / "data.bin").write_bytes(bytes(range(200)))
    blob = FileBlob(tmp_path / "data.bin")
    assert len(blob) == 200
    assert blob[10:14] == bytes([10, 11, 12, 13])
    assert blob[195:300] == bytes([195, 196, 197, 198, 199])


def test_external_weights_at_offsets_in_one_file_import_with_parity(tmp_path) -> None:
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((8, 8, 1, 1), dtype=np.float32) for _ in range(3)]
    path = _write_chain(tmp_path, weights)
    files = open_model_files(path).external
    assert list(files) == ["weights.bin"] and len(files["weights.bin"]) == 3 * weights[0].nbytes
    imported = import_model(path)
    assert imported.parity.max_rel_err < 1e-5
    stored = {init.name: np.frombuffer(init.raw_data, np.float32) for init in imported.graph.graph.initializer}
    np.testing.assert_array_equal(stored["w2"], weights[2].ravel())


def test_a_weights_file_shorter_than_the_model_says_is_refused(tmp_path) -> None:
    rng = np.random.default_rng(0)
    path = _write_chain(tmp_path, [rng.standard_normal((8, 8, 1, 1), dtype=np.float32)])
    with open(tmp_path / "weights.bin", "r+b") as blob:
        blob.truncate(100)
    with pytest.raises(InvalidModel, match=r"reads bytes 0\.\.256 of 'weights.bin', which holds 100 bytes"):
        import_model(path)


def test_the_model_id_covers_the_external_data(tmp_path) -> None:
    """The same .onnx with other external weights is another model; without external data the id is the plain sha256."""
    import hashlib

    from kinetoscope.model_files import model_id
    from kinetoscope.server.importer.files import FileBlob

    data = b"graph bytes"
    assert model_id(data) == model_id(data, {}) == hashlib.sha256(data).hexdigest()[:16]
    ones, twos = b"\x01" * 3_000_000, b"\x02" * 3_000_000
    assert model_id(data, {"w.bin": ones}) != model_id(data, {"w.bin": twos}) != model_id(data)
    assert model_id(data, {"a": b"xy", "b": b""}) != model_id(data, {"a": b"x", "b": b"y"})  # boundaries count
    (tmp_path / "w.bin").write_bytes(ones)
    assert model_id(data, {"w.bin": FileBlob(tmp_path / "w.bin")}) == model_id(data, {"w.bin": ones})
