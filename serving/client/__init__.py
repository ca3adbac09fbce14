"""Python clients of the prediction server (INTERFACE.md section 6): `RestClient` (`rest`), `GrpcClient`
(`grpc_client`), `connect` and the default-server `predict`/`generate`/`embed` (`default`), re-exported here as
`from serving import client`; `cli` is `python -m serving.predict`. REST needs no TensorFlow.
"""
from serving.client.common import DEFAULT_SERVER, ServingError  # noqa: F401 - the client API
from serving.client.default import connect, embed, generate, predict  # noqa: F401
from serving.client.grpc_client import GrpcClient  # noqa: F401
from serving.client.rest import RestClient, wait_until_ready  # noqa: F401

__all__ = ["DEFAULT_SERVER", "GrpcClient", "RestClient", "ServingError", "connect", "embed", "generate", "predict",
           "wait_until_ready"]
