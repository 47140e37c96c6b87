"""Graph inputs as the CLI and the service declare them (`NAME=1x3x224x224:image:-128..127`).

`InputSpec`, the kinds and the default range are the shared vocabulary of
`kinetoscope.common`; this module reads declarations and reports bad ones as
`InvalidModel`, the importer's error.
"""

from __future__ import annotations

import re
from typing import Sequence

from kinetoscope.common import InputSpec, parse_kind

from .errors import InvalidModel

_SPEC = re.compile(
    r"^(?P<name>[^=]+)=(?P<shape>\d+(?:x\d+)*)"
    r"(?::(?P<kind>[a-z_]*))?"
    r"(?::(?P<lo>-?[\d.]+(?:e-?\d+)?)\.\.(?P<hi>-?[\d.]+(?:e-?\d+)?))?$"
)


def parse_input_spec(text: str) -> InputSpec:
    """Parse `NAME=1x3x224x224[:KIND[:LO..HI]]`, the CLI's --input syntax."""
    match = _SPEC.match(text.strip())
    if not match:
        raise InvalidModel(
            f"cannot read input declaration {text!r}; expected NAME=1x3x224x224[:KIND[:LO..HI]]",
            stage="inputs",
        )
    shape = tuple(int(d) for d in match["shape"].split("x"))
    try:
        kind = parse_kind(match["kind"]).value if match["kind"] else None
    except ValueError as exc:
        raise InvalidModel(f"input {match['name']!r}: {exc}", stage="inputs") from None
    value_range = None
    if match["lo"] is not None:
        value_range = (float(match["lo"]), float(match["hi"]))
        if not value_range[0] < value_range[1]:
            raise InvalidModel(f"input {match['name']!r}: range {value_range} is empty", stage="inputs")
    return InputSpec(name=match["name"], shape=shape, kind=kind, value_range=value_range)


def as_specs(items: Sequence[InputSpec | str] | None) -> dict[str, InputSpec]:
    specs: dict[str, InputSpec] = {}
    for item in items or ():
        spec = parse_input_spec(item) if isinstance(item, str) else item
        if spec.name in specs:
            raise InvalidModel(f"input {spec.name!r} is declared twice", stage="inputs")
        specs[spec.name] = spec
    return specs

