"""Client side of kinetoscope: the CLI and, later, the gRPC client and rendering.

Importing this package must stay light: no torch, so that a tool that only talks
to a remote server pays for grpcio, protobuf and numpy alone.
"""
