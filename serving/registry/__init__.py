"""The model registry (INTERFACE.md section 4), TensorFlow-free: `deployment` copies a job's export into
`$GENART_HOME/models/<MODEL>/<VERSION>/` and rewrites `models.config`; `cli` is `create_model.sh`'s command line
(`python -m serving.create_model`). The tree's layout itself is `artifacts.model_tree`'s.
"""
from serving.registry.deployment import RegistryError, deploy  # noqa: F401 - the registry's API
