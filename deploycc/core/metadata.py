"""What deploycc records inside an ONNX model: its content hash and the JSON metadata its exporter
wrote (``deploycc.arch``, ``deploycc.preprocessing``, ``deploycc.training``).

One reader for every stage that needs them (build, quantize, train, verify), so a key's format is
parsed in one place.
"""

from __future__ import annotations

import hashlib
import json

import onnx


def model_sha256(model: onnx.ModelProto) -> str:
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def metadata_json(model: onnx.ModelProto, key: str) -> dict | None:
    """The JSON value deploycc's exporter stored under ``key`` in the model's metadata, if any."""
    for prop in model.metadata_props:
        if prop.key == key:
            try:
                return json.loads(prop.value)
            except json.JSONDecodeError:
                return None
    return None


def preprocessing_of(model: onnx.ModelProto) -> dict | None:
    return metadata_json(model, "deploycc.preprocessing")
