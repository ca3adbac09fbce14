"""gcp-storage-emulator honouring `ifGenerationMatch` on uploads, as GCS does (the stock emulator ignores it).

    python tests/gcs_preconditions.py start --host 127.0.0.1 --port PORT --in-memory

Same command line as `gcp-storage-emulator`. Only uploads (`objects.insert`: media and multipart, what
`Blob.upload_from_string` sends) check the precondition: `0` means "the object must not exist", any other value
must equal the object's current generation, else 412 conditionNotMet. Check and write happen under one lock. This
is the test's model of GCS's documented semantics, not GCS itself.
"""
from __future__ import annotations

import sys
import threading
from http import HTTPStatus

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects

_lock = threading.Lock()
_stock_insert = objects.insert
CONDITION_NOT_MET = {"error": {"code": 412, "message": "At least one of the pre-conditions you specified did not hold.",
                               "errors": [{"reason": "conditionNotMet", "domain": "global",
                                           "message": "Precondition Failed"}]}}


def _object_name(request) -> str | None:
    if "name" in request.query:
        return request.query["name"][0]
    data = request.data if isinstance(request.data, dict) else {}
    return (data.get("meta") or {}).get("name")


def insert(request, response, storage, *args, **kwargs):
    expected = request.query.get("ifGenerationMatch")
    if not expected:
        return _stock_insert(request, response, storage, *args, **kwargs)
    with _lock:
        try:
            current = storage.get_file_obj(request.params["bucket_name"], _object_name(request))["generation"]
        except NotFound:
            current = "0"
        if str(current) != expected[0]:
            response.status = HTTPStatus.PRECONDITION_FAILED
            response.json(CONDITION_NOT_MET)
            return None
        return _stock_insert(request, response, storage, *args, **kwargs)


objects.insert = insert  # before the server module builds its routing table from it

if __name__ == "__main__":
    from gcp_storage_emulator.__main__ import main

    sys.exit(main())
