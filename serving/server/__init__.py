"""The prediction server (`python -m serving.server`, INTERFACE.md sections 5 and 13): `values` (JSON <-> tensors),
`image_check` and `tensors` (inputs bounded before they are decoded or built), `model`, `core` (the request core),
`model_config`, `versions` and `manager`, `batching` (where graph calls run), `limits` (slots, deadlines), `metrics`,
the thin `rest` (over `http_server`) and `grpc_api` adapters (sharing `auth`, `protos`, `limits.Slots` and
`metrics.timed_request`), `cli`, and `studio` (the web studio's page and `static/` files). Imports nothing itself.
"""
