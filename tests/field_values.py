"""A different valid value of any configuration field, for the tests that change each field in
turn and check which cache keys move."""

import dataclasses
import typing


def another_value(value, hint, field: dataclasses.Field | None = None):
    """A value of type ``hint`` other than ``value``, inside the field's declared range."""
    maximum = field.metadata.get("maximum") if field is not None else None
    if typing.get_origin(hint) is typing.Literal:
        return next(c for c in typing.get_args(hint) if c != value)
    if value is None:  # an optional setting left to its rule: give it a value
        return True if bool in typing.get_args(hint) else 7
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        new = value * 1.5 if value else 0.5
        return (value + maximum) / 2 if maximum is not None and new > maximum else new
    if isinstance(value, tuple):
        if value and all(isinstance(v, int | float) for v in value):
            return (*value[:-1], another_value(value[-1], type(value[-1]), field))
        return (*value, "extra")
    raise TypeError(f"no rule to change a {hint}")
