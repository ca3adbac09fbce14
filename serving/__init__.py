"""Serving tier (never imports `trainer`), in sub-packages: `registry` (deploy exports into the model tree,
`create_model.sh`), `server` (TF-Serving-compatible REST + gRPC), `client` (Python clients, `serving.predict`),
`batch` (Beam batch prediction). The INTERFACE.md commands `python -m serving.server`, `serving.predict`,
`serving.batch_predict` and `serving.create_model` are kept: `server` is a package with `__main__`, the other
three are one-line entry modules here that call their sub-package's `cli.main`.
"""
