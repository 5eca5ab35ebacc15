"""Typed configuration: one frozen dataclass per study, profile overrides, validation, hashing.

A study declares *sections* (frozen dataclasses such as ``DataConfig``, ``FlowConfig``) whose
defaults are the ``default`` profile, and one study configuration that holds them::

    @dataclass(frozen=True)
    class FlowConfig:
        epochs: int = setting(6, minimum=1, doc="passes over the training stars per member")

    @dataclass(frozen=True)
    class HernquistConfig:
        data: DataConfig = DataConfig()
        flow: FlowConfig = FlowConfig()

``smoke`` and ``full`` are small override sets beside it (``{"flow.epochs": 2}``). Every field is
addressed by its dotted name ``section.field``; an unscoped ``field`` is accepted where exactly one
section has it. :func:`resolve` applies the profile's overrides, then the user's, checking names,
types and ranges, so a bad value is an error before anything runs.

An artifact's cache key (:func:`artifact_key`) is the canonical form of the sections its builder
reads plus the builder's version number, so changing a field rebuilds exactly the artifacts that
depend on it, and changing a builder's code is one version bump.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PROFILES = ("smoke", "default", "full")


class ConfigError(ValueError):
    """An override names no field, names several, or has a value of the wrong type or range."""


def setting(
    default: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: Sequence[Any] | None = None,
    doc: str = "",
) -> Any:
    """A configuration field with a valid range (inclusive) or a set of valid values."""
    meta = {"minimum": minimum, "maximum": maximum, "choices": choices, "doc": doc}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Target:
    """A bound a notebook asserts on one of its metrics, under the profiles listed.

    ``why`` says where the bound comes from (a paper's number, a sampling error, a physical limit);
    a target with neither bound is *reported* only (shown in the table, never asserted). Under
    the profiles in ``shown_in`` the bound is shown beside the value with its verdict but not
    asserted (a target the profile's budget is known not to reach).
    """

    metric: str
    lower: float | None = None
    upper: float | None = None
    profiles: tuple[str, ...] = ("default", "full")
    why: str = ""
    shown_in: tuple[str, ...] = ()

    def asserted_in(self, profile: str) -> bool:
        has_bound = self.lower is not None or self.upper is not None
        return has_bound and profile in self.profiles

    def passes(self, value: float) -> bool:
        ok_lower = self.lower is None or value >= self.lower
        ok_upper = self.upper is None or value <= self.upper
        return bool(ok_lower and ok_upper)

    def describe(self) -> str:
        if self.lower is not None and self.upper is not None:
            return f"[{self.lower:.4g}, {self.upper:.4g}]"
        if self.upper is not None:
            return f"≤ {self.upper:.4g}"
        if self.lower is not None:
            return f"≥ {self.lower:.4g}"
        return "reported"


def bounds(
    lower: Mapping[str, float] | None = None,
    upper: Mapping[str, float] | None = None,
    profiles: tuple[str, ...] = ("default", "full"),
    why: str = "",
    shown_in: tuple[str, ...] = (),
) -> tuple[Target, ...]:
    """Targets from ``{metric: bound}`` maps; a metric in both becomes one two-sided target."""
    lower, upper = dict(lower or {}), dict(upper or {})
    names = list(lower) + [m for m in upper if m not in lower]
    return tuple(Target(m, lower.get(m), upper.get(m), profiles, why, shown_in) for m in names)


def targets_for(targets: Sequence[Target], profile: str) -> tuple[Target, ...]:
    """The targets asserted, shown or reported under ``profile``."""
    return tuple(t for t in targets if profile in t.profiles or profile in t.shown_in)


# ---------------------------------------------------------------------------------------------
# Field access


def sections(cfg: Any) -> dict[str, Any]:
    """``{section name: section instance}`` of a study configuration."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def field_specs(cfg_type: type) -> dict[str, tuple[Any, dataclasses.Field]]:
    """``{"section.field": (type hint, dataclass field)}`` for every field of a study config."""
    out = {}
    for sec in dataclasses.fields(cfg_type):
        sec_type = typing.get_type_hints(cfg_type)[sec.name]
        hints = typing.get_type_hints(sec_type)
        for f in dataclasses.fields(sec_type):
            out[f"{sec.name}.{f.name}"] = (hints[f.name], f)
    return out


def flatten(cfg: Any) -> dict[str, Any]:
    """``{"section.field": value}`` of a study configuration, in declaration order."""
    return {
        f"{name}.{f.name}": getattr(sec, f.name)
        for name, sec in sections(cfg).items()
        for f in dataclasses.fields(sec)
    }


def match_field(cfg_type: type, name: str) -> str:
    """The dotted field name that ``name`` (``section.field`` or an unscoped ``field``) means.

    Raises:
        ConfigError: for a name that matches no field (with close matches and every valid name)
            or an unscoped name that several sections have (listing them).
    """
    specs = field_specs(cfg_type)
    if name in specs:
        return name
    matches = [k for k in specs if k.split(".", 1)[1] == name]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConfigError(
            f"{cfg_type.__name__}: {name!r} is ambiguous, it matches {matches}; "
            "give the section (e.g. " + repr(matches[0]) + ")"
        )
    close = difflib.get_close_matches(name, list(specs), n=3)
    hint = f" Did you mean {close}?" if close else ""
    raise ConfigError(f"{cfg_type.__name__}: no field {name!r}.{hint} Valid names: {sorted(specs)}")


# ---------------------------------------------------------------------------------------------
# Validation


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def coerce(name: str, hint: Any, value: Any, field: dataclasses.Field | None = None) -> Any:
    """``value`` as the field's type (JSON lists become tuples, ints become floats), validated.

    Raises:
        ConfigError: naming the field, its type and what was given.
    """
    where = f"{name} (type {_type_name(hint)})"
    out = _coerce(where, hint, value)
    meta = field.metadata if field is not None else {}
    choices = meta.get("choices")
    if choices is not None and out not in choices:
        raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
    for bound, ok in (
        ("minimum", lambda v, b: v >= b),
        ("maximum", lambda v, b: v <= b),
    ):
        b = meta.get(bound)
        if b is None or out is None:
            continue
        values = out if isinstance(out, tuple) else (out,)
        bad = [v for v in values if not ok(v, b)]
        if bad:
            raise ConfigError(f"{where}: {value!r} is out of range, the {bound} is {b}")
    return out


def _coerce(where: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(where, option, value)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits no option")
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{where}: {value!r} is not one of {list(typing.get_args(hint))}")
        return value
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_coerce(where, item, v) for v in value)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type")


def resolve(
    cfg_type: type,
    profile: str,
    profile_overrides: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, Any] | None = None,
) -> Any:
    """The study configuration for ``profile`` with the user's ``overrides`` applied.

    Args:
        cfg_type: the study's configuration dataclass (its defaults are the ``default`` profile).
        profile_overrides: ``{"smoke": {...}, "full": {...}}`` dotted names → values.
        overrides: the user's dotted or unscoped names → values (JSON types).

    Raises:
        ConfigError: for an unknown profile, an unknown or ambiguous name, or a bad value.
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {list(PROFILES)}")
    specs = field_specs(cfg_type)
    values: dict[str, Any] = {}
    for layer, source in (
        (profile_overrides.get(profile, {}), f"profile {profile!r}"),
        (overrides or {}, "override"),
    ):
        for raw, value in layer.items():
            try:
                name = match_field(cfg_type, raw)
                hint, field = specs[name]
                values[name] = coerce(name, hint, value, field)
            except ConfigError as err:
                raise ConfigError(f"{source}: {err}") from None
    base = cfg_type()
    changed = {}
    for sec_name, sec in sections(base).items():
        sec_values = {
            k.split(".", 1)[1]: v for k, v in values.items() if k.startswith(sec_name + ".")
        }
        changed[sec_name] = dataclasses.replace(sec, **sec_values) if sec_values else sec
    return cfg_type(**changed)


def validate_defaults(cfg_type: type) -> None:
    """Check that every default fits its own type and range (a test calls this per study)."""
    for name, value in flatten(cfg_type()).items():
        hint, field = field_specs(cfg_type)[name]
        coerce(name, hint, value, field)


# ---------------------------------------------------------------------------------------------
# Keys


def to_json(cfg: Any) -> dict[str, dict[str, Any]]:
    """``{section: {field: value}}`` with tuples as lists: the canonical, JSON-ready form."""
    return {
        name: {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(sec).items()
        }
        for name, sec in sections(cfg).items()
    }


@dataclass(frozen=True)
class Artifact:
    """A cached artifact: the configuration it is built from, and its builder's version.

    ``reads`` lists whole sections (``"data"``) or single fields (``"flow.epochs"``). Bump
    ``version`` whenever the builder's code changes what it produces.
    """

    reads: tuple[str, ...]
    version: int = 1


def artifact_key(cfg: Any, name: str, artifact: Artifact, /, **extra: Any) -> dict[str, Any]:
    """The cache key of one artifact: its name and version, the fields it reads, ``extra``.

    ``extra`` carries what the configuration does not hold (the seed, an ensemble member's index,
    a user file's content fingerprint).
    """
    as_json = to_json(cfg)
    key: dict[str, Any] = {"artifact": name, "version": artifact.version}
    for item in artifact.reads:
        section, _, field = item.partition(".")
        if section not in as_json or (field and field not in as_json[section]):
            raise KeyError(f"artifact {name!r} reads {item!r}, which the configuration lacks")
        key[item] = as_json[section][field] if field else as_json[section]
    return {**key, **extra}


def config_hash(cfg: Any) -> str:
    """12 hex digits identifying the whole configuration (recorded with every result)."""
    from astrogen.store import param_hash

    return param_hash(to_json(cfg))
