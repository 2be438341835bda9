"""Meter model files shipped with the platform (`<model>.yaml`), one per model and protocol."""

from __future__ import annotations

from importlib import resources
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from hemera.domain.errors import UnknownMeterModel

ModelSchema = TypeVar("ModelSchema", bound=BaseModel)


def load_model_file(model: str, schema: type[ModelSchema], what: str) -> ModelSchema:
    """Validate `<model>.yaml` against `schema`; `UnknownMeterModel` if absent, of another
    protocol or invalid (`what` names the kind of map in the message, e.g. "register map")."""
    name = f"{model}.yaml"
    folder = resources.files(__name__)
    if not model.replace("-", "").isalnum() or not (folder / name).is_file():
        raise UnknownMeterModel(f"no {what} for meter model {model!r}")
    try:
        return schema.model_validate(yaml.safe_load((folder / name).read_text()))
    except ValidationError as exc:
        raise UnknownMeterModel(f"{what} of {model!r} is invalid: {exc}") from exc
