"""The OpenAPI document the service serves at /openapi.json (and /docs): the
committed docs/openapi.yaml, which this package holds as openapi.yaml (a
symlink in the repository, the file's content in a wheel), read once at start."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def document() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("openapi.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3."):
        raise ValueError("openapi.yaml is not an OpenAPI 3 document")
    json.dumps(doc)  # every value must be JSON (an unquoted YAML date would not be): fail at start, not on a request
    return doc
