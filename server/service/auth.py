"""Optional bearer-token check: every kinetoscope.v1 RPC needs `authorization: Bearer <token>` when a token is set.

Health and server reflection stay open: probes call health without credentials, and
tools such as grpcurl resolve even the health service's descriptor through reflection,
which describes the contract and reveals no models, recordings or results.
"""

from __future__ import annotations

import hmac
import logging

import grpc

_LOGGER = logging.getLogger(__name__)

OPEN_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
)
"""Methods anyone may call: health (load balancers and orchestrators) and reflection (descriptor look-ups)."""


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls without the right token with UNAUTHENTICATED, before any servicer code runs."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("a bearer token must not be empty")
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_PREFIXES):
            return handler
        sent = dict(handler_call_details.invocation_metadata or ()).get("authorization")
        if sent is not None and hmac.compare_digest(_as_bytes(sent), self._expected):
            return handler
        reason = "no `authorization` metadata" if sent is None else "a wrong token"
        _LOGGER.info("refused %s: %s", handler_call_details.method, reason)
        return _refusal(handler, f"this server needs `authorization: Bearer <token>` metadata; the call had {reason}")


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that ends the call with UNAUTHENTICATED."""

    def deny(request, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    make = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    return make(deny, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
