"""Command-line options built from the pydantic config, so each option is defined once.

:func:`add_field_option` reads a config ``Field`` (its type, default, enum or ``Literal`` choices
and description) and adds the matching argparse argument; the flag's name, metavar and any
command-specific note stay with the command. Each argument remembers its field, so an error
that names a field (``sweep.k_max``) can be shown with the flag the user typed
(:func:`flag_for`).
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Collection, Sequence
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo


def csv_list(value: str) -> tuple[str, ...]:
    """Parse ``"a, b,,c"`` into ``("a", "b", "c")`` (an option holding several names)."""
    return tuple(v.strip() for v in value.split(",") if v.strip())


def config_field(model: type[BaseModel], path: str) -> FieldInfo:
    """Return the ``FieldInfo`` at dotted ``path`` (``"sweep.k_max"``) under ``model``."""
    *parents, name = path.split(".")
    for part in parents:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    return model.model_fields[name]


def add_field_option(
    parser: argparse.ArgumentParser,
    flags: str | tuple[str, ...],
    model: type[BaseModel],
    path: str,
    *,
    exclude: Collection[str] = (),
    note: str | None = None,
    **overrides: Any,
) -> argparse.Action:
    """Add the argument for config field ``path`` of ``model``; return its action.

    Type, default, choices (of an enum or ``Literal``, minus ``exclude``), ``required`` and the
    help (the field's description, then ``note``, then the default) come from the field;
    ``overrides`` are passed to ``add_argument`` last (``metavar``, ``dest``, a CLI default).
    A tuple field takes comma-separated values; a ``bool`` field defaulting to False is a switch.
    """
    info = config_field(model, path)
    flags = (flags,) if isinstance(flags, str) else flags
    kwargs = _argument_kwargs(info, exclude)
    notes = (kwargs.pop("choice_note", None), note)
    kwargs["help"] = _help(info, kwargs.pop("shown_default"), notes)
    if not flags[0].startswith("-"):
        kwargs.pop("required")  # a positional is required by being positional
    kwargs.update(overrides)
    action = parser.add_argument(*flags, **kwargs)
    action.config_field = path  # type: ignore[attr-defined]
    return action


def flag_for(parser: argparse.ArgumentParser, loc: Sequence[str | int]) -> str | None:
    """Return the flag (``--k-max``) that sets the field at pydantic ``loc``, if ``parser`` has one.

    ``loc`` is an error's location (``("sweep", "k_max")``, or ``("sweep", "algorithms", 0)``
    for one item of a list option: the longest prefix that an option sets wins).
    """
    fields = {getattr(a, "config_field", None): a for a in parser._actions}
    for end in range(len(loc), 0, -1):
        action = fields.get(".".join(str(part) for part in loc[:end]))
        if action is not None:
            return action.option_strings[0] if action.option_strings else action.dest.upper()
    return None


def build_config(command: str, model: type[BaseModel], **fields: Any) -> Any:
    """Build ``command``'s config ``model`` from option values; a rejected value is one line.

    The line names the option as the user typed it (``--max-missing``), not the pydantic field.

    Raises
    ------
    ConfigError
        When the config model rejects a value.
    """
    from pydantic import ValidationError

    from clusterflow.errors import ConfigError
    from clusterflow_cli.parser import PROG, command_parser

    try:
        return model(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        flag = flag_for(command_parser(command), first["loc"])
        where = f"{flag} ({where})" if flag else where
        raise ConfigError(
            f"invalid option {where}: {first['msg']}", hint=f"see {PROG} {command} --help"
        ) from err


def table_fields(args: argparse.Namespace) -> dict[str, Any]:
    """Return the ``TrainConfig`` fields of the options on a table that train and impute share.

    Both read DATA with the same column roles (``--text-column``, ``--id-column``,
    ``--exclude-columns``), in the same ``--workspace``, with the same ``--seed``, and hold out the
    same rows for the gate (``--time-column``, ``--holdout-share``): the stages of ``impute`` are
    training's, so the two commands build these fields in one place.
    """
    return {
        "data": str(args.data),
        "text_column": args.text_column,
        "id_column": args.id_column,
        "exclude_columns": args.exclude_columns,
        "workspace": args.workspace,
        "random_state": args.seed,
        "time_column": args.time_column,
    }


def _argument_kwargs(info: FieldInfo, exclude: Collection[str]) -> dict[str, Any]:
    kind = _without_none(info.annotation)
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    kwargs: dict[str, Any] = {"required": info.is_required(), "default": default}
    if kind is bool:
        if default is not False:
            raise TypeError("a switch must default to False; write a --no-... flag by hand")
        return {**kwargs, "action": "store_true", "shown_default": None}
    if get_origin(kind) is tuple:
        values = tuple(_plain(v) for v in default or ())
        kwargs.update(type=csv_list, default=values, metavar="A,B")
        items = _choices(get_args(kind)[0], exclude)
        if items:
            kwargs["choice_note"] = f"comma-separated, any of {','.join(items)}"
        shown = "all" if items and list(values) == items else ",".join(values) or None
        return {**kwargs, "shown_default": shown}
    choices = _choices(kind, exclude)
    if choices:
        kwargs["choices"] = choices
    elif kind in (int, float):
        kwargs["type"] = kind
    kwargs["default"] = _plain(default)
    return {**kwargs, "shown_default": kwargs["default"]}


def _help(info: FieldInfo, shown_default: Any, notes: tuple[str | None, ...]) -> str:
    text = " ".join((info.description or "").split()).rstrip(".")
    # Config descriptions say what None means; on the command line that is the flag left out.
    text = text.replace("(None: ", "(default: ")
    first, _, rest = text.partition(" ")
    if first[:1].isupper() and first[1:] == first[1:].lower():  # not HDBSCAN, MLflow
        text = f"{first.lower()} {rest}".rstrip()
    text = "; ".join(t for t in (text, *notes) if t)
    if shown_default is not None:
        text += f" (default: {shown_default})"
    return text.replace("%", "%%")  # argparse formats help with %-style placeholders


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        kinds = [a for a in get_args(annotation) if a is not type(None)]
        if len(kinds) == 1:
            return kinds[0]
    return annotation


def _choices(kind: Any, exclude: Collection[str]) -> list[str] | None:
    if isinstance(kind, type) and issubclass(kind, Enum):
        values = [str(member.value) for member in kind]
    elif get_origin(kind) is Literal:
        values = [str(v) for v in get_args(kind)]
    else:
        return None
    return [v for v in values if v not in exclude]


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value
