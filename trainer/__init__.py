"""Training of genart's generative models: typed options (`config`, with each model's own in `models/`), the
models registered by name (`models/`), networks and losses by name (`networks/`, `losses`, `choices`), the loop
shared by every model (`loop`: strategy, checkpoints, summaries, job.json), the SavedModel export (`export`) and
the command lines (`task`, `prepare`)."""
