"""A client made from the .proto file by grpcio-tools alone (no kinetoscope module) imports a model and maximizes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

from .helpers import ROOT, TRAINED

PROTO = ROOT / "proto" / "kinetoscope" / "v1" / "kinetoscope.proto"

CLIENT = textwrap.dedent('''
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import grpc
    import numpy as np
    import contract_pb2 as pb, contract_pb2_grpc as rpc

    target, model_path = sys.argv[2], sys.argv[3]
    data = open(model_path, "rb").read()

    def upload():
        yield pb.ImportModelRequest(header=pb.ImportHeader(name="from-protoc", model_bytes=len(data)))
        for offset in range(0, len(data), 1 << 20):
            yield pb.ImportModelRequest(chunk=pb.FileChunk(data=data[offset:offset + (1 << 20)]))

    with grpc.insecure_channel(target) as channel:
        info = rpc.ModelServiceStub(channel).ImportModel(upload(), timeout=120)
        request = pb.MaximizeRequest(
            model=info.id,
            objectives=[pb.Objective(terms=[pb.Target(kind=pb.Target.LOGIT, layer="logits", channel=4)])],
            settings=[pb.RegularizerSetting(kappa=1.0, gamma=0.0)],
            options=pb.MaximizeOptions(iterations=6),
        )
        buffers, shapes, kinds = {}, {}, []
        for event in rpc.VisualizationServiceStub(channel).Maximize(request, timeout=120):
            kind = event.WhichOneof("event")
            kinds.append(kind)
            if kind == "data":
                chunk = event.data.chunk
                buffer = buffers.setdefault(chunk.name, bytearray())
                assert chunk.offset == len(buffer)
                buffer += chunk.data
                shapes[chunk.name] = (tuple(chunk.shape), chunk.dtype)
            elif kind == "result":
                activation = event.result.activation
    arrays = {name: np.frombuffer(bytes(buf), dtype=np.dtype(shapes[name][1]).newbyteorder("<")).reshape(shapes[name][0])
              for name, buf in buffers.items()}
    print(json.dumps({
        "id": info.id, "layers": info.layer_count, "kinds": sorted(set(kinds)), "activation": activation,
        "shapes": {name: list(a.shape) for name, a in arrays.items()},
        "finite": all(bool(np.isfinite(a).all()) for a in arrays.values()),
        "kinetoscope_loaded": any(m == "kinetoscope" or m.startswith("kinetoscope.") for m in sys.modules),
    }))
''')


def test_a_client_generated_by_grpcio_tools_alone_imports_and_maximizes(fresh, tmp_path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(PROTO, source / "contract.proto")  # a fresh module name: contract_pb2, not kinetoscope.v1
    generated = tmp_path / "gen"
    generated.mkdir()
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{source}", f"--python_out={generated}",
                    f"--grpc_python_out={generated}", "contract.proto"], check=True)
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    done = subprocess.run([sys.executable, "-I", str(script), str(generated), f"127.0.0.1:{fresh.port}", str(TRAINED)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert not report["kinetoscope_loaded"]
    assert len(report["id"]) == 16 and report["layers"] > 10
    assert report["kinds"] == ["data", "progress", "result", "summary"]
    assert report["shapes"] == {"rgb": [3, 32, 32], "flow": [20, 32, 32]} and report["finite"]
