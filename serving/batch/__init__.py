"""Batch prediction on Apache Beam (`python -m serving.batch_predict`, INTERFACE.md section 7): `options` (data
formats and default batch size: no Beam, no TensorFlow), `cli` (arguments, checks, summary), `beam_io` (files in
and out, the key rule) and `beam_inference` (the ModelHandler over `serving.server.core`, the pipeline graph).
"""
