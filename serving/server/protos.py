"""The TF Serving response messages both protocol adapters send (gRPC as is, REST as their JSON form):
GetModelStatusResponse for the manager's version statuses, GetModelMetadataResponse for a loaded model."""
from __future__ import annotations

from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from serving.server.manager import VersionStatus
from serving.server.model import LoadedModel


def status_proto(statuses: list[VersionStatus]):
    """TF Serving's GetModelStatusResponse for `ModelManager.status(...)`."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for status in statuses:
        entry = response.model_version_status.add()
        entry.version = status.version
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(status.state)
        entry.status.error_code = entry.status.DESCRIPTOR.fields_by_name["error_code"].enum_type \
            .values_by_name[status.error_code].number
        entry.status.error_message = status.error_message
    return response


def metadata_proto(model: LoadedModel):
    """TF Serving's GetModelMetadataResponse with the `signature_def` metadata (every SignatureDef)."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = model.name
    response.model_spec.version.value = model.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in sorted(model.signature_defs.items()):
        signature_map.signature_def[name].CopyFrom(signature_def)
    response.metadata["signature_def"].Pack(signature_map)
    return response
