"""Evaluation of generated images (INTERFACE.md section 9): metric maths (`metrics`) and names (`names`), the
feature nets (`features`: genart's MNIST `digits` CNN, or InceptionV3 from a user's file; inputs via `images`,
`digits`), one model's evaluation on train and val images (`evaluator`), what it writes (`report`), jobs and
training (`run`), and the CLI `python -m trainer.evaluate`. Importing this package loads no TensorFlow.
"""
