"""What every exportable network tells the converter about its dreamable layers."""


class LayerInfo:
    """A layer a dream can target: its name, stride in input pixels and channel count."""

    def __init__(self, name: str, stride: int, channels: int, label: str) -> None:
        self.name = name
        self.stride = stride
        self.channels = channels
        self.label = label  # a visitor-facing word for what this layer tends to dream


def check_layer_names(names: list[str], valid: list[LayerInfo]) -> None:
    """Refuse unknown or repeated layer names, listing the valid ones."""
    known = [info.name for info in valid]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"unknown layer {', '.join(unknown)}; valid layers: {', '.join(known)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"a layer is named twice in {','.join(names)}")
    if not names:
        raise ValueError("no layers chosen; valid layers: " + ", ".join(known))
