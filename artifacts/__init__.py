"""The artifacts genart writes and reads, TensorFlow-free (the bottom floor): storage (local and gs://, copies
and publishing), name rules, and the layout and schema of each artifact: the dataset dir and its manifest
(`dataset`), the job dir and job.json (`jobs`), the SavedModel export (`export`), and the `$GENART_HOME` model
tree with models.config (`model_tree`). Every file name and schema is spelled here and nowhere else.
"""
