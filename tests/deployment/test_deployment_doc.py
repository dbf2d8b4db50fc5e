"""docs/deployment.md stays true: every setting is there, by name and by variable."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from moorage.settings import Settings

DEPLOYMENT_DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def _nested_model(annotation: object) -> type[BaseModel] | None:
    """The settings model a field holds, also when it is optional; None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for member in typing.get_args(annotation):
            found = _nested_model(member)
            if found is not None:
                return found
    return None


def setting_names(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """The dotted name of every leaf setting of `model`: `listen`, `storage.s3.bucket`, ..."""
    for name, field in model.model_fields.items():
        nested = _nested_model(field.annotation)
        if nested is None:
            yield f"{prefix}{name}"
        else:
            yield from setting_names(nested, f"{prefix}{name}.")


def variable_name(setting: str) -> str:
    """The environment variable of a dotted setting name."""
    return "MOORAGE_" + setting.replace(".", "__").upper()


class _Bucket(BaseModel):
    bucket: str = "blobs"


class _Storage(BaseModel):
    driver: str = "s3"
    s3: _Bucket | None = None


def test_settings_are_walked_into_nested_models() -> None:
    names = set(setting_names(Settings))

    assert set(setting_names(_Storage)) == {"driver", "s3.bucket"}

    assert {"listen", "storage.driver", "auth.service", "builds.work_dir"} <= names
    assert "storage" not in names
    assert variable_name("storage.s3.bucket") == "MOORAGE_STORAGE__S3__BUCKET"


@pytest.mark.parametrize("setting", sorted(setting_names(Settings)))
def test_every_setting_is_in_the_deployment_doc(setting: str) -> None:
    doc = DEPLOYMENT_DOC.read_text()

    assert f"`{setting}`" in doc, f"{setting} is missing from docs/deployment.md"
    assert f"`{variable_name(setting)}`" in doc, f"{variable_name(setting)} is missing"
