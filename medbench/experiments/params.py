"""Declared parameters: one pydantic model per protocol types, checks and documents its parameters.

Theory of operation
-------------------
A run's parameters are three groups, all in one flat dict:

* the simulator's common parameters (:data:`medbench.experiments.DEFAULTS`: ``n``,
  ``topology``, ``faults``, ...), declared by :class:`RunParams` with their types, units and help
  (:data:`COMMON_DOCS`); their defaults are read from ``DEFAULTS`` itself;
* the workload every protocol shares (:class:`medbench.experiments.load.Workload`: ``clients``,
  ``requests``, ``rate_tps``, ``payload_bytes``, ``load``, ...);
* the protocol's own parameters, declared by its schema, a subclass of :class:`RunParams`.

:func:`resolve` checks a dict against its protocol's schema and returns the full parameter set
(aliases translated, types coerced, defaults filled). Unknown names are refused with the valid
ones listed and a "did you mean" guess; a value of the wrong type or out of range is refused with
the parameter's name; a bool is never taken for a number. Every error is an
:class:`~medbench.experiments.ExperimentError` of one line.

Declaring a protocol's parameters
---------------------------------
Subclass :class:`RunParams` and give each parameter a type, a default and help (and a unit, in
``json_schema_extra``, or let :func:`unit_of` infer it from the name's suffix: ``_us``, ``_ms``,
``_bytes``, ``_tps``, ...)::

    from pydantic import Field
    from medbench.experiments.params import RunParams, param

    class HotStuffParams(RunParams):
        batch: int = param(16, "most requests in one block", ge=1)
        view_timeout_us: int = param(500_000, "leader timeout before a view change", ge=1)

    PARAMS = HotStuffParams  # found by resolve() next to the factory

then register the factory as usual (``register_protocol("hotstuff", "pkg.mod:build")``): the
schema is the ``PARAMS`` attribute of the factory's module (or ``params_schema(name)`` there, for
a module serving several protocols, as :mod:`.baselines` does), or the ``schema`` given to
:func:`~medbench.experiments.register_protocol`. In the factory, ``PARAMS.resolve(params)``
gives the checked dict. A schema may override :meth:`RunParams.estimate` (messages and memory
of a run, see :mod:`medbench.experiments.size`). ``tests/test_params.py`` checks that every
registered protocol has a schema.
"""

from __future__ import annotations

import difflib
import importlib
import types
import typing
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from medbench.experiments import load
from medbench.experiments.runner import _REGISTRY, _SCHEMAS, DEFAULTS, ExperimentError
from medbench.sim import faults as fault_spec
from medbench.sim import topology as topo

UNITS: tuple[tuple[str, str], ...] = (
    ("_us", "us"),
    ("_ms", "ms"),
    ("_bytes", "bytes"),
    ("_tps", "tx/s"),
    ("_mbps", "Mbit/s"),
    ("_ns", "ns"),
)
"""Name suffix -> unit, for parameters that declare none."""


def unit_of(name: str, field: Any = None) -> str:
    """The unit of parameter ``name``: the field's declared one, else from its suffix."""
    extra = getattr(field, "json_schema_extra", None)
    if isinstance(extra, dict) and extra.get("unit"):
        return str(extra["unit"])
    for suffix, unit in UNITS:
        if name.endswith(suffix):
            return unit
    return ""


def param(default: Any, help: str, unit: str = "", **constraints: Any) -> Any:
    """A pydantic ``Field`` with help text, an optional unit and constraints (``ge=1``, ...)."""
    extra: dict[str, Any] | None = {"unit": unit} if unit else None
    return Field(default, description=help, json_schema_extra=extra, **constraints)


COMMON_DOCS: dict[str, tuple[Any, str, str, dict[str, Any]]] = {
    "n": (int, "replicas (nodes) of the protocol", "nodes", {"ge": 1}),
    "topology": (
        str,
        "network: complete, city, province, country, or a graph file (.graphml, .edgelist)",
        "",
        {},
    ),
    "latency_us": (int, "one-way link latency (complete topology only)", "us", {"ge": 0}),
    "bandwidth_mbps": (float, "link bandwidth (complete topology only)", "Mbit/s", {"gt": 0}),
    "loss": (float, "probability that a message copy is lost", "", {"ge": 0, "le": 1}),
    "jitter_us": (int, "uniform extra delay per message, at most this", "us", {"ge": 0}),
    "tick_us": (int, "period of the timer tick (0: deadline ticks only)", "us", {"ge": 0}),
    "cpu": (Literal["profile", "none"], "CPU model: the cost profile, or none", "", {}),
    "crypto": (Literal["modeled", "real"], "signatures modeled, or real Ed25519", "", {}),
    "duration_ms": (float, "virtual time limit of a run", "ms", {"gt": 0}),
    "faults": (str, "fault schedule, e.g. 'crash:3@200ms; partition:0,1|2,3@1s'", "", {}),
    "hosts": (int, "hosts the nodes share (0: a CPU per node; k: by site, mod k)", "", {"ge": 0}),
    "cores": (int, "cores per host (with hosts)", "cores", {"ge": 1}),
    "client_processes": (int, "with hosts: clients in this many processes (0: one each)", "", {}),
    "round_ticks": (bool, "with hosts: processes tick and send in rounds (the cluster's)", "", {}),
}
"""Type, help, unit and constraints of the simulator's common parameters (:data:`DEFAULTS`)."""


def _common_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {
        "protocol": (str, param("", "registered protocol name (medbench params)"))
    }
    for name, default in DEFAULTS.items():
        typ, help_, unit, cons = COMMON_DOCS.get(name, (type(default), "", "", {}))
        if typing.get_origin(typ) is Literal:  # type: ignore[comparison-overlap]
            ok = default in typing.get_args(typ)
        else:
            ok = isinstance(default, typ) or (typ is float and type(default) is int)
        if not ok:  # a default changed elsewhere to another kind of value: keep it checkable
            typ, cons = type(default), {}
        fields[name] = (typ, param(default, help_, unit or unit_of(name), **cons))
    return fields


_WARNED: set[str] = set()


class _Base(BaseModel):
    model_config = ConfigDict(
        extra="forbid", coerce_numbers_to_str=True, frozen=True, validate_default=False
    )


_SimParams: Any = create_model("_SimParams", __base__=_Base, **_common_fields())


class RunParams(_SimParams, load.Workload):  # type: ignore[misc]
    """Parameters every protocol has: the simulator's and the workload's (subclass it)."""

    model_config = ConfigDict(
        extra="forbid", coerce_numbers_to_str=True, frozen=True, validate_default=False
    )

    ALIASES: ClassVar[dict[str, str]] = dict(load.ALIASES)
    """Deprecated names accepted for this protocol (old name -> new name)."""

    @field_validator("faults", mode="after", check_fields=False)
    @classmethod
    def _faults_parse(cls, value: str) -> str:
        fault_spec.parse(value)  # FaultSpecError is a ValueError: pydantic reports it
        return value

    @field_validator("topology", mode="after", check_fields=False)
    @classmethod
    def _topology_known(cls, value: str) -> str:
        known = ("complete", *sorted(topo.PRESETS))
        if value in known:
            return value
        from pathlib import Path

        path = value.removeprefix("file:")
        if not (value.startswith("file:") or value.endswith(topo.GRAPH_SUFFIXES)):
            raise ValueError(
                f"expected one of {', '.join(known)} or a graph file "
                f"({', '.join(topo.GRAPH_SUFFIXES)}, or file:PATH)"
            )
        if not Path(path).is_file():
            raise ValueError(f"no topology file {path!r}")
        return value

    @classmethod
    def resolve(cls, params: Mapping[str, Any], protocol: str = "") -> dict[str, Any]:
        """Check ``params`` against this schema; return every parameter (see the module doc)."""
        name = protocol or str(params.get("protocol", "") or "")
        given = cls.translate(params, name)
        for key, value in given.items():
            if isinstance(value, bool) and _numeric(cls.model_fields[key].annotation):
                where = f" of {name}" if name else ""
                raise ExperimentError(f"parameter {key}{where}: expected a number, not {value}")
        try:
            model = cls(**given)
        except ValidationError as exc:
            raise ExperimentError(_one_line(exc, name)) from None
        out = model.model_dump()
        if name:
            out["protocol"] = name
        return out

    @classmethod
    def translate(cls, params: Mapping[str, Any], protocol: str = "") -> dict[str, Any]:
        """``params`` with deprecated names replaced and unknown names refused (no defaults)."""
        fields = cls.model_fields
        out: dict[str, Any] = {}
        where = f" for {protocol}" if protocol else ""
        for key, value in params.items():
            key = str(key)
            if key in fields:
                if key in out and key != "protocol":
                    raise ExperimentError(f"parameter {key!r} given twice (once by an old name)")
                out[key] = value
                continue
            new = cls.ALIASES.get(key)
            if new is not None and new in fields:
                if new in params:
                    raise ExperimentError(f"give {new!r} or its old name {key!r}, not both")
                try:
                    new, value = (
                        load.translate_alias(key, value)
                        if key in load.ALIASES
                        else (
                            new,
                            value,
                        )
                    )
                except ValueError as exc:
                    raise ExperimentError(f"parameter {key}: {exc}") from None
                if key not in _WARNED:  # once per name and process
                    _WARNED.add(key)
                    warnings.warn(
                        f"parameter {key!r} is deprecated: use {new!r}",
                        DeprecationWarning,
                        stacklevel=3,
                    )
                out[new] = value
                continue
            raise ExperimentError(unknown_message(key, fields, where))
        return out

    @classmethod
    def table(cls) -> list[dict[str, str]]:
        """One row per parameter: name, type, default, unit, help (``medbench params``)."""
        rows = []
        for name, field in cls.model_fields.items():
            if name == "protocol":
                continue
            rows.append(
                {
                    "name": name,
                    "type": type_name(field.annotation),
                    "default": repr(field.default)
                    if isinstance(field.default, str)
                    else str(field.default),
                    "unit": unit_of(name, field),
                    "help": field.description or "",
                    "group": (
                        "workload"
                        if name in load.WORKLOAD_FIELDS
                        else "simulator"
                        if name in DEFAULTS or name == "protocol"
                        else "protocol"
                    ),
                }
            )
        return rows

    @classmethod
    def estimate(cls, p: Mapping[str, Any]) -> dict[str, float]:
        """Estimated ``messages`` and peak ``memory_bytes`` of a run of resolved ``p``.

        The default is a generic all-to-all protocol (every request costs ``n^2`` messages);
        protocols override it (see :mod:`medbench.experiments.size`).
        """
        from medbench.experiments import size

        return size.generic(p)


def type_name(annotation: Any) -> str:
    """A short readable name of a parameter's type (``int``, ``float | None``, ``a | b``)."""
    if typing.get_origin(annotation) is Literal:
        return " | ".join(repr(a) if a == "" else str(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and not isinstance(annotation, types.GenericAlias):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def unknown_message(key: str, valid: Iterable[str], where: str = "") -> str:
    """``unknown parameter 'requets' for pbft (did you mean 'requests'?); valid: ...``."""
    names = sorted(valid)
    guess = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    return f"unknown parameter {key!r}{where}{hint}; valid: {', '.join(names)}"


def _numeric(annotation: Any) -> bool:
    """True for ``int``, ``float`` and their optional forms (a bool is not taken for them)."""
    args = (
        typing.get_args(annotation)
        if typing.get_origin(annotation)
        in (
            typing.Union,
            types.UnionType,
        )
        else (annotation,)
    )
    return any(a in (int, float) for a in args)


def _one_line(exc: ValidationError, protocol: str) -> str:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(x) for x in err.get("loc", ()))
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    got = err.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    where = f" of {protocol}" if protocol else ""
    loc = f"parameter {loc}" if loc else "parameters"
    more = f"; and {len(exc.errors()) - 1} more" if len(exc.errors()) > 1 else ""
    return f"{loc}{where}: {msg}{shown}{more}"


def schema_for(protocol: str) -> type[RunParams]:
    """The parameter schema of registered ``protocol`` (see the module docstring)."""
    if protocol not in _REGISTRY:
        known = sorted(_REGISTRY)
        guess = difflib.get_close_matches(protocol, known, n=1, cutoff=0.6)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        raise ExperimentError(
            f"unknown protocol {protocol!r}{hint}; registered: {', '.join(known)}"
        )
    entry = _SCHEMAS.get(protocol)
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
    if entry is None:
        factory = _REGISTRY[protocol]
        module_name = factory.partition(":")[0] if isinstance(factory, str) else factory.__module__
        where = importlib.import_module(module_name)
        finder = getattr(where, "params_schema", None)
        entry = finder(protocol) if callable(finder) else getattr(where, "PARAMS", None)
    if entry is None:
        raise ExperimentError(
            f"protocol {protocol!r} declares no parameters (see medbench.experiments.params)"
        )
    if not (isinstance(entry, type) and issubclass(entry, RunParams)):
        raise ExperimentError(f"the schema of {protocol!r} is not a RunParams subclass")
    _SCHEMAS[protocol] = entry
    return entry


def resolve(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter of one run, checked against its protocol's schema."""
    name = params.get("protocol")
    if name is None or name == "":
        raise ExperimentError("parameters need a 'protocol' (medbench params lists them)")
    return schema_for(str(name)).resolve(params, str(name))


def canonical(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as given, checked, with old names translated and types coerced (no defaults).

    What a sweep keys its runs on: the same run written two ways gets the same ``run_id``.
    """
    full = resolve(params)
    given = schema_for(str(params["protocol"])).translate(params, str(params["protocol"]))
    return {k: full[k] for k in given}


__all__ = [
    "COMMON_DOCS",
    "RunParams",
    "canonical",
    "param",
    "resolve",
    "schema_for",
    "type_name",
    "unit_of",
    "unknown_message",
]
