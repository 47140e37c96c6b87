"""The kinetoscope.v1 wire contract (protobuf messages and gRPC stubs)."""
