"""What a dream maximises: how strongly the chosen layers fire.

The loss is a weighted sum over layers of the mean activation (or, with `norm="l2"`, the mean
squared activation, which favours the strongest features over broad, mild ones). Optionally
one channel of one layer replaces that layer's term: "make more of this one feature".
Weights are relative; layers with weight 0 are not computed at all.

An Objective is called as `objective(ops, image, scale)`: a backend can then compile it once
(`ops.value_and_grad(objective, ...)`; native TensorFlow traces it into one graph that holds
only the layers it names) instead of seeing a new Python closure for every tile.
"""

NORMS = ("mean", "l2")


class Objective:
    """Weighted layers, a norm, and an optional single channel."""

    def __init__(self, weights: dict, norm: str = "mean", channel: tuple | None = None) -> None:
        if norm not in NORMS:
            raise ValueError("unknown norm " + repr(norm) + "; valid norms: " + ", ".join(NORMS))
        self.weights = {}
        for name in weights:
            weight = float(weights[name])
            if weight != 0.0:
                self.weights[name] = weight
        if not self.weights:
            raise ValueError("the objective needs at least one layer with a weight other than 0")
        self.norm = norm
        self.channel = channel  # (layer name, channel index) or None
        if channel is not None and channel[0] not in self.weights:
            raise ValueError("the channel's layer " + repr(channel[0]) + " has no weight")

    @property
    def layers(self) -> list:
        """The layers to compute, in a stable order."""
        return list(self.weights)

    @property
    def key(self) -> tuple:
        """What this objective computes, as a hashable value: equal keys, equal losses
        (a backend caches one compiled function per key)."""
        return (tuple(self.weights.items()), self.norm, self.channel)

    def check(self, outputs: list) -> None:
        """Refuse layers or channels the model does not have, listing the valid ones.

        `outputs` are the manifest's output entries (dicts with "layer" and "channels").
        """
        by_name = {}
        for out in outputs:
            by_name[out["layer"]] = out
        for name in self.weights:
            if name not in by_name:
                raise ValueError("unknown layer " + repr(name) + "; valid layers: "
                                 + ", ".join(o["layer"] for o in outputs))
        if self.channel is not None:
            layer, index = self.channel
            channels = by_name[layer]["channels"]
            if not 0 <= index < channels:
                raise ValueError("channel " + str(index) + " is out of range for " + layer
                                 + "; valid channels: 0-" + str(channels - 1))

    def __call__(self, ops: object, image: object, scale: object) -> object:
        """The scalar to maximise for one tile of the image (see `loss`)."""
        return self.loss(ops, ops.activations(image, self.layers), scale)

    def loss(self, ops: object, activations: list, scale: object) -> object:
        """The scalar to maximise from the layers' activations; `scale` is the tile's share
        of the image (a number, or a scalar tensor when compiled).

        Scaling each tile's mean by its share of the pixels makes the tiled loss, and so its
        gradient, add up to the loss of the whole image.
        """
        total = None
        for name, act in zip(self.layers, activations):
            if self.channel is not None and self.channel[0] == name:
                act = ops.channel(act, self.channel[1])
            term = ops.mean(act) if self.norm == "mean" else ops.mean(ops.square(act))
            term = ops.scale(term, self.weights[name])
            total = term if total is None else ops.add(total, term)
        return ops.scale(total, scale)
