"""Evaluation of generated images: metric maths (`metrics`), their names (`names`), and the feature nets that
the feature-space metrics run on (`features`: genart's own MNIST `digits` CNN, or InceptionV3 from a user's
weights file), with one documented conversion of any image to a net's input (`images`, `digits`).
Importing this package loads no TensorFlow; `features` does so when a net is built.
"""
