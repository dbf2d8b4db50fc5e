"""Reading console forms and turning a service's refusal into messages beside the fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.requests import Request

from moorage.console.formatting import sentence
from moorage.errors import ConflictError, FieldInvalidError, MoorageError


@dataclass(slots=True)
class FormErrors:
    """What is wrong with a submitted form: per field, and about the form as a whole."""

    fields: dict[str, str] = field(default_factory=dict)
    general: str | None = None

    def __bool__(self) -> bool:
        return bool(self.fields) or self.general is not None


def form_errors(
    exc: MoorageError,
    fields: Mapping[str, str] | None = None,
    conflict_field: str | None = None,
) -> FormErrors:
    """`exc` as form errors: a bad field by its form name (`fields` maps the service's names
    to the form's), a conflict beside `conflict_field`, anything else above the form."""
    message = sentence(exc.message)
    if isinstance(exc, FieldInvalidError):
        name = (fields or {}).get(exc.field, exc.field)
        return FormErrors(fields={name: message})
    if isinstance(exc, ConflictError) and conflict_field is not None:
        return FormErrors(fields={conflict_field: message})
    return FormErrors(general=message)


def field_error(name: str, message: str) -> FormErrors:
    """One field's error, written by the console itself."""
    return FormErrors(fields={name: message})


async def read_form(request: Request) -> dict[str, str]:
    """The submitted text fields, trimmed of surrounding white space except passwords."""
    submitted = await request.form()
    values: dict[str, str] = {}
    for name, value in submitted.multi_items():
        if isinstance(value, str) and name not in values:
            values[name] = value if "password" in name else value.strip()
    return values


def optional_int(values: Mapping[str, str], name: str, label: str) -> int | None:
    """A whole number from the form, None when left empty."""
    raw = values.get(name, "")
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise FieldInvalidError(name, f"{label} must be a whole number, such as 20") from None
