"""Turn the CLI's `--units 0,3,7 | 0-15 | all | class names` into Target messages."""

from __future__ import annotations

from kinetoscope.v1 import kinetoscope_pb2 as pb


class UnitSpecError(ValueError):
    pass


def parse_units(spec: str, channels: int, class_names: list[str] | None = None) -> list[int]:
    """Channel indices in the order asked; class names work for a logit layer."""
    spec = spec.strip()
    if spec == "all":
        return list(range(channels))
    names = {name: i for i, name in enumerate(class_names or [])}
    units: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part in names:
            units.append(names[part])
        elif "-" in part and part.replace("-", "").isdigit():
            low, high = (int(x) for x in part.split("-", 1))
            if low > high:
                raise UnitSpecError(f"range {part!r} is empty")
            units.extend(range(low, high + 1))
        elif part.isdigit():
            units.append(int(part))
        else:
            known = f"; class names: {', '.join(names)}" if names else ""
            raise UnitSpecError(f"cannot read unit {part!r}: use 0,3,7 or 0-15 or all{known}")
    bad = [u for u in units if not 0 <= u < channels]
    if bad:
        raise UnitSpecError(f"units {bad} are outside 0..{channels - 1} for this layer")
    return units


def objectives(layer: str, units: list[int], kind: str = "channel") -> list[pb.Objective]:
    kinds = {"channel": pb.Target.CHANNEL, "neuron": pb.Target.NEURON, "logit": pb.Target.LOGIT}
    return [pb.Objective(terms=[pb.Target(kind=kinds[kind], layer=layer, channel=u, weight=1.0)]) for u in units]
