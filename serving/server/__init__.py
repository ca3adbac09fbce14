"""The prediction server (`python -m serving.server`, INTERFACE.md sections 5 and 13): `values` (JSON <-> tensors),
`model` (a loaded SavedModel), `core` (the request core), `model_config`, `manager`, `batching`, `metrics`, the thin
`rest` and `grpc_api` adapters (sharing `auth`, `protos` and `metrics.timed_request`) and `cli` (flags, start,
stop), and `studio`, which serves the web studio's page and its `static/` files (section 10). Importing this package
imports nothing, so `--help` needs no TensorFlow.
"""
