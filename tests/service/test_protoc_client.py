"""A client made from the .proto file by grpcio-tools alone drives every RPC of a token-guarded server.

The client runs in a clean folder, as a subprocess whose import path holds grpcio,
protobuf and numpy but no kinetoscope: what a Node.js or Go client generated from the
.proto has to go on. Health it resolves through reflection, as grpcurl does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc

from .helpers import ROOT, TRAINED, start

PROTO = ROOT / "proto" / "kinetoscope" / "v1" / "kinetoscope.proto"
TOKEN = "protoc-client-token"

# grpc/reflection/v1/reflection.proto as published by gRPC (comments dropped); v1alpha differs only in its package.
REFLECTION = textwrap.dedent('''
    syntax = "proto3";
    package grpc.reflection.PACKAGE;
    service ServerReflection {
      rpc ServerReflectionInfo(stream ServerReflectionRequest) returns (stream ServerReflectionResponse);
    }
    message ServerReflectionRequest {
      string host = 1;
      oneof message_request {
        string file_by_filename = 3;
        string file_containing_symbol = 4;
        ExtensionRequest file_containing_extension = 5;
        string all_extension_numbers_of_type = 6;
        string list_services = 7;
      }
    }
    message ExtensionRequest { string containing_type = 1; int32 extension_number = 2; }
    message ServerReflectionResponse {
      string valid_host = 1;
      ServerReflectionRequest original_request = 2;
      oneof message_response {
        FileDescriptorResponse file_descriptor_response = 4;
        ExtensionNumberResponse all_extension_numbers_response = 5;
        ListServiceResponse list_services_response = 6;
        ErrorResponse error_response = 7;
      }
    }
    message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
    message ExtensionNumberResponse { string base_type_name = 1; repeated int32 extension_number = 2; }
    message ListServiceResponse { repeated ServiceResponse service = 1; }
    message ServiceResponse { string name = 1; }
    message ErrorResponse { int32 error_code = 1; string error_message = 2; }
''')

CLIENT = textwrap.dedent('''
    import importlib.util, json, sys
    sys.path[:0] = [sys.argv[1], sys.argv[2]]  # the generated code, then grpcio / protobuf / numpy
    import grpc
    import numpy as np
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    import contract_pb2 as pb, contract_pb2_grpc as rpc
    import reflection_v1_pb2 as r1, reflection_v1_pb2_grpc as r1_rpc
    import reflection_v1alpha_pb2 as ra, reflection_v1alpha_pb2_grpc as ra_rpc

    target, model_path, token = sys.argv[3], sys.argv[4], sys.argv[5]
    auth = (("authorization", "Bearer " + token),)
    T = pb.Target
    out = {"kinetoscope_importable": importlib.util.find_spec("kinetoscope") is not None}

    def upload(data):
        yield pb.ImportModelRequest(header=pb.ImportHeader(name="from-protoc", model_bytes=len(data)))
        for offset in range(0, len(data), 1 << 20):
            yield pb.ImportModelRequest(chunk=pb.FileChunk(data=data[offset:offset + (1 << 20)]))

    def chunks(name, array):
        data = array.astype("<f4").tobytes()
        for offset in range(0, len(data), 4096):
            yield pb.TensorChunk(name=name, shape=list(array.shape), dtype="float32", offset=offset,
                                 total_bytes=len(data), data=data[offset:offset + 4096])

    def clips(model):
        yield pb.RecordRequest(header=pb.RecordHeader(model=model, layers=["conv_fusion", "logits"], top_k=2))
        rng = np.random.default_rng(0)
        for i in range(4):
            yield pb.RecordRequest(clip=pb.ClipStart(id=f"clip-{i}", has_label=True, label=i % 2))
            yield from (pb.RecordRequest(data=c) for c in chunks("rgb", rng.uniform(-128, 127, (3, 32, 32))))
            yield from (pb.RecordRequest(data=c) for c in chunks("flow", rng.uniform(-20, 20, (20, 32, 32))))

    def reflect(stub, **request):
        """One request on a reflection stream, without credentials."""
        kind = type(stub).__module__.split("_pb2")[0]
        messages = r1 if kind == "reflection_v1" else ra
        reply = next(iter(stub.ServerReflectionInfo(iter([messages.ServerReflectionRequest(**request)]), timeout=30)))
        assert reply.WhichOneof("message_response") != "error_response", reply.error_response
        return reply

    def files(reply):
        return [descriptor_pb2.FileDescriptorProto.FromString(b) for b in reply.file_descriptor_response.file_descriptor_proto]

    def status(error):
        return error.code().name

    with grpc.insecure_channel(target) as channel:
        models, vis, rec = rpc.ModelServiceStub(channel), rpc.VisualizationServiceStub(channel), rpc.RecordingServiceStub(channel)

        # no token: data RPCs are refused, reflection and health answer
        try:
            models.ListModels(pb.ListModelsRequest(), timeout=30)
            out["unauthenticated"] = "OK"
        except grpc.RpcError as error:
            out["unauthenticated"] = status(error)

        v1, v1alpha = r1_rpc.ServerReflectionStub(channel), ra_rpc.ServerReflectionStub(channel)
        for name, stub in (("v1", v1), ("v1alpha", v1alpha)):
            listed = reflect(stub, list_services="*").list_services_response.service
            out[f"services_{name}"] = sorted(s.name for s in listed)
        contract = files(reflect(v1, file_containing_symbol="kinetoscope.v1.VisualizationService"))
        by_name = files(reflect(v1alpha, file_by_filename=contract[0].name))
        result_fields = {m.name: [f.name for f in m.field] for m in by_name[0].message_type}["UnitResult"]
        out["contract"] = {"file": contract[0].name, "package": contract[0].package, "same": contract[0] == by_name[0],
                           "services": [s.name for s in contract[0].service], "unit_result": result_fields}
        itself = files(reflect(v1, file_containing_symbol="grpc.reflection.v1.ServerReflection"))
        out["reflection_v1_file"] = [(f.name, f.package, [s.name for s in f.service]) for f in itself]

        # health as grpcurl does it: descriptors through reflection, then a dynamic call, no token anywhere
        pool = descriptor_pool.DescriptorPool()
        for proto in files(reflect(v1, file_containing_symbol="grpc.health.v1.Health")):
            pool.Add(proto)
        health = pool.FindServiceByName("grpc.health.v1.Health")
        check = health.methods_by_name["Check"]
        Request = message_factory.GetMessageClass(check.input_type)
        Response = message_factory.GetMessageClass(check.output_type)
        serving = check.output_type.enum_types_by_name["ServingStatus"].values_by_name["SERVING"].number
        call = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=Request.SerializeToString,
                                   response_deserializer=Response.FromString)
        out["health"] = {name: call(Request(service=name), timeout=30).status == serving
                         for name in ("", "kinetoscope.v1.ModelService", "kinetoscope.v1.VisualizationService",
                                      "kinetoscope.v1.RecordingService", "kinetoscope.v1.AnalysisService")}
        watch = channel.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=Request.SerializeToString,
                                     response_deserializer=Response.FromString)(Request(service=""), timeout=30)
        out["watch_serving"] = next(iter(watch)).status == serving
        watch.cancel()

        # every kinetoscope.v1 RPC, with the token
        info = models.ImportModel(upload(open(model_path, "rb").read()), metadata=auth, timeout=120)
        out["listed"] = [m.id for m in models.ListModels(pb.ListModelsRequest(), metadata=auth, timeout=30).models]
        detail = models.GetModel(pb.GetModelRequest(model="from-protoc"), metadata=auth, timeout=30)
        out["model"] = {"id": info.id, "layers": len(detail.layers), "classes": len(detail.info.class_names),
                        "kinds": [i.kind for i in detail.info.inputs], "layouts": [i.layout for i in detail.info.inputs],
                        "streams": sorted({layer.streams for layer in detail.layers})}

        request = pb.MaximizeRequest(
            model=info.id,
            objectives=[pb.Objective(terms=[T(kind=T.CHANNEL, layer="/conv_fusion/relu/Relu", channel=4)]),
                        pb.Objective(terms=[T(kind=T.LOGIT, channel=4)]),
                        pb.Objective(terms=[T(kind=T.NEURON, layer="rgb/conv3", channel=1),
                                            T(layer="conv_fusion", channel=2, weight=0.5)])],
            settings=[pb.RegularizerSetting(gamma=0.0)],  # kappa left unset
            options=pb.MaximizeOptions(iterations=4, max_batch=2),
        )
        buffers, shapes, results, progress, summary = {}, {}, {}, [], None
        for event in vis.Maximize(request, metadata=auth, timeout=120):
            kind = event.WhichOneof("event")
            if kind == "progress":
                progress.append((event.progress.samples_done, event.progress.samples_total))
            elif kind == "result":
                r = event.result
                results[r.unit_index] = {
                    "kappa": r.setting.kappa, "gamma": r.setting.gamma,
                    "terms": [[T.Kind.Name(t.kind), t.layer, t.channel, list(t.position), t.weight] for t in r.target.terms],
                }
            elif kind == "data":
                chunk = event.data.chunk
                buffer = buffers.setdefault((event.data.unit_index, chunk.name), bytearray())
                assert chunk.offset == len(buffer)
                buffer += chunk.data
                shapes[chunk.name] = (tuple(chunk.shape), chunk.dtype)
            else:
                summary = event.summary
        arrays = [np.frombuffer(bytes(buf), dtype=np.dtype(shapes[name][1]).newbyteorder("<")).reshape(shapes[name][0])
                  for (_, name), buf in buffers.items()]
        out["maximize"] = {"results": results, "last_progress": progress[-1], "summary": summary is not None,
                           "shapes": {name: list(shape) for name, (shape, _) in shapes.items()},
                           "finite": all(bool(np.isfinite(a).all()) for a in arrays)}

        recorded = rec.Record(clips(info.id), metadata=auth, timeout=120)
        listed = rec.ListRecordings(pb.ListRecordingsRequest(model=info.id), metadata=auth, timeout=30).recordings
        got = rec.GetRecording(pb.GetRecordingRequest(recording=recorded.id), metadata=auth, timeout=30)
        fusion = {layer.layer: layer for layer in got.layers}["conv_fusion"]
        out["recording"] = {"clips": recorded.clips, "layers": list(recorded.layers), "listed": [r.id for r in listed] == [recorded.id],
                            "channels": len(fusion.max), "top": len(fusion.top[0].clips),
                            "top_ids": sorted({c.clip_id for top in fusion.top for c in top.clips}) <= [f"clip-{i}" for i in range(4)],
                            "per_class_max": list(fusion.per_class_max.shape),
                            "per_class_sum": list(fusion.per_class_sum.shape), "per_class_count": list(fusion.per_class_count),
                            "clips_kept": recorded.clips_kept}

        analysis = rpc.AnalysisServiceStub(channel).Analyze(pb.AnalyzeRequest(
            model=info.id, recording=recorded.id, layers=["logits"],
            options=pb.AnalyzeOptions(permutations=99, speeds=[0.5, 1.0, 2.0])), metadata=auth, timeout=120)
        units = analysis.layers[0].units
        out["analysis"] = {"clips": analysis.clips, "layers": [layer.layer for layer in analysis.layers],
                           "units": len(units), "class_mean": len(units[0].class_mean),
                           "labels": sorted({u.label for u in units} - {"class-specific", "distributed"}),
                           "reliance": sorted(units[0].reliance), "shares": sorted(units[0].shares),
                           "speed_curve": len(units[0].speed_curve)}

        evolution = rpc.AnalysisServiceStub(channel).Evolution(pb.EvolutionRequest(
            checkpoints=[info.id, "from-protoc"], maximize=pb.MaximizeRequest(
                objectives=[pb.Objective(terms=[T(kind=T.LOGIT, channel=c)]) for c in (4, 5)],
                options=pb.MaximizeOptions(iterations=4, seed=0))), metadata=auth, timeout=120)
        out["evolution"] = {"checkpoints": list(evolution.checkpoints), "settings": len(evolution.settings),
                            "units": [(u.unit, u.setting) for u in evolution.units],
                            "inputs": sorted(i.input for i in evolution.units[0].inputs),
                            "change": sorted({len(i.change) for u in evolution.units for i in u.inputs}),
                            "change_max": max(abs(c) for u in evolution.units for i in u.inputs for c in i.change),
                            "variation": {i.input: len(i.variation) for i in evolution.units[0].inputs}}

        jobs = rpc.JobServiceStub(channel)
        submitted = jobs.Submit(pb.SubmitJobRequest(name="protoc", sweep=pb.SweepRequest(
            models=[info.id], layers=[pb.SweepLayer(layer="conv_fusion", channels=[0, 1, 2], batch=2)],
            settings=[pb.RegularizerSetting(kappa=1, gamma=0)], options=pb.MaximizeOptions(iterations=2))),
            metadata=auth, timeout=60)
        watched = list(jobs.Watch(pb.WatchJobRequest(job=submitted.id), metadata=auth, timeout=120))
        streamed = list(jobs.Watch(pb.WatchJobRequest(job=submitted.id, results=True), metadata=auth, timeout=120))
        parts, before_finish = [], {}
        for event in streamed:
            if event.HasField("result"):
                parts.append(event.result.WhichOneof("event"))
                continue
            if event.HasField("finished"):
                before_finish[event.finished.task] = [kind for kind in parts if kind != "data"]
            parts = []
        got = jobs.Get(pb.GetJobRequest(job=submitted.id), metadata=auth, timeout=30)
        listed_jobs = jobs.List(pb.ListJobsRequest(states=[pb.SUCCEEDED]), metadata=auth, timeout=30).jobs
        fetched = list(jobs.Results(pb.JobResultsRequest(job=submitted.id, channels=[2]), metadata=auth, timeout=60))
        cancelled = jobs.Cancel(pb.CancelJobRequest(job=submitted.id), metadata=auth, timeout=30)
        deleted = jobs.Delete(pb.DeleteJobRequest(job=submitted.id), metadata=auth, timeout=30).id
        out["jobs"] = {"tasks": got.info.tasks.total, "state": pb.JobState.Name(got.info.state),
                       "last_event": pb.JobState.Name(watched[-1].changed),
                       "offsets": [e.offset for e in watched] == list(range(len(watched))),
                       "listed": [j.id for j in listed_jobs] == [submitted.id],
                       "results": [e.WhichOneof("event") for e in fetched if e.WhichOneof("event") != "data"],
                       "channel": [e.result.target.terms[0].channel for e in fetched if e.HasField("result")],
                       "cancel_ended": pb.JobState.Name(cancelled.state), "deleted": deleted == submitted.id,
                       "watch_results": before_finish,
                       "watch_events": [e.SerializeToString() for e in streamed if not e.HasField("result")]
                       == [e.SerializeToString() for e in watched]}

        out["deleted"] = models.DeleteModel(pb.DeleteModelRequest(model=info.id), metadata=auth, timeout=30).id
        out["after_delete"] = len(models.ListModels(pb.ListModelsRequest(), metadata=auth, timeout=30).models)
    print(json.dumps(out))
''')


def test_a_client_generated_from_the_proto_alone_drives_every_rpc(tmp_path) -> None:
    running = start(tmp_path / "store", token=TOKEN)
    try:
        report = _run_client(tmp_path, running.port)
    finally:
        running.stop()
    assert not report["kinetoscope_importable"]
    assert report["unauthenticated"] == "UNAUTHENTICATED"

    services = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
                "kinetoscope.v1.AnalysisService", "kinetoscope.v1.JobService", "kinetoscope.v1.ModelService", "kinetoscope.v1.RecordingService", "kinetoscope.v1.VisualizationService"]
    assert report["services_v1"] == report["services_v1alpha"] == services
    unit_result = report["contract"].pop("unit_result")
    assert report["contract"] == {"file": "kinetoscope/v1/kinetoscope.proto", "package": "kinetoscope.v1", "same": True,
                                  "services": ["ModelService", "VisualizationService", "RecordingService",
                                               "AnalysisService", "JobService"]}
    assert unit_result[-1] == "target" and "objective" in unit_result
    assert report["reflection_v1_file"] == [["grpc/reflection/v1/reflection.proto", "grpc.reflection.v1", ["ServerReflection"]]]
    assert all(report["health"].values()) and len(report["health"]) == 5 and report["watch_serving"]

    model = report["model"]
    assert report["listed"] == [model["id"]] and model["layers"] > 10 and model["classes"] == 10
    assert model["kinds"] == ["image", "stacked_flow"] and model["layouts"] == ["NCHW", "NCHW"]
    assert model["streams"] == ["appearance", "fusion", "motion"]

    maximize = report["maximize"]
    assert maximize["results"] == {
        "0": {"kappa": 1.0, "gamma": 0.0, "terms": [["CHANNEL", "conv_fusion", 4, [], 1.0]]},
        "1": {"kappa": 1.0, "gamma": 0.0, "terms": [["LOGIT", "logits", 4, [], 1.0]]},
        "2": {"kappa": 1.0, "gamma": 0.0, "terms": [["NEURON", "rgb/conv3", 1, [4, 4], 1.0],
                                                    ["CHANNEL", "conv_fusion", 2, [], 0.5]]},
    }
    assert maximize["last_progress"] == [3, 3] and maximize["summary"]
    assert maximize["shapes"] == {"rgb": [3, 32, 32], "flow": [20, 32, 32]} and maximize["finite"]

    recording = report["recording"]
    assert recording == {"clips": 4, "layers": ["conv_fusion", "logits"], "listed": True, "channels": 64, "top": 2,
                         "top_ids": True, "per_class_max": [64, 10], "per_class_sum": [64, 10],
                         "per_class_count": [2, 2, 0, 0, 0, 0, 0, 0, 0, 0], "clips_kept": True}
    assert report["analysis"] == {"clips": 4, "layers": ["logits"], "units": 10, "class_mean": 10, "labels": [],
                                  "reliance": ["flow", "rgb"], "shares": ["appearance", "joint", "motion"],
                                  "speed_curve": 3}
    evolution = report["evolution"]
    assert evolution.pop("checkpoints") == [model["id"], model["id"]]  # by id and by name: the same model twice
    assert evolution.pop("change_max") < 1e-6  # the same seeded run on identical weights: no change between them
    assert evolution == {"settings": 1, "units": [[0, 0], [1, 0]], "inputs": ["flow", "rgb"], "change": [1],
                         "variation": {"flow": 2, "rgb": 2}}
    assert report["jobs"] == {"tasks": 2, "state": "SUCCEEDED", "last_event": "SUCCEEDED", "offsets": True, "listed": True,
                              "results": ["task", "result"], "channel": [2], "cancel_ended": "SUCCEEDED",
                              "deleted": True, "watch_results": {"0": ["task", "result", "result"], "1": ["task", "result"]},
                              "watch_events": True}
    assert report["deleted"] == model["id"] and report["after_delete"] == 0


def _run_client(tmp_path: Path, port: int) -> dict:
    """Generates the stubs in a folder of their own and runs the client with only grpcio, protobuf and numpy importable."""
    source, generated = tmp_path / "src", tmp_path / "gen"
    source.mkdir()
    generated.mkdir()
    shutil.copy(PROTO, source / "contract.proto")  # a fresh module name: contract_pb2, not kinetoscope.v1
    for package in ("v1", "v1alpha"):
        (source / f"reflection_{package}.proto").write_text(REFLECTION.replace("PACKAGE", package))
    protos = ["contract.proto", "reflection_v1.proto", "reflection_v1alpha.proto"]
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{source}", f"--python_out={generated}",
                    f"--grpc_python_out={generated}", *protos], check=True)
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    libraries = Path(grpc.__file__).resolve().parents[1]
    # -I -S: no site-packages processing, so the editable kinetoscope install is not on the path
    done = subprocess.run([sys.executable, "-I", "-S", str(script), str(generated), str(libraries), f"127.0.0.1:{port}",
                           str(TRAINED), TOKEN], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
