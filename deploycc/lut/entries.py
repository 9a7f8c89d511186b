"""What a LUT holds: the entries of a search space at one input shape, and their ONNX export.

An entry is one piece of the network timed alone, as FBNet and SqueezeNAS built their tables:
the stem, the head (everything after the last searchable layer), and every legal candidate unit
at every searchable layer's exact input shape and stride. Layers with equal channels, stride and
input size share entries. An identity unit (``skip`` at stride 1 with equal channels) compiles to
no operation at all, so its entry is 0 ms and is not profiled.
"""

from __future__ import annotations

import io
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

from deploycc.core.errors import UserError

DEFAULT_SHAPES = {"squeezenas": (1, 3, 1024, 2048), "fbnet": (1, 3, 224, 224)}


@dataclass(frozen=True)
class EntrySpec:
    kind: str  # "stem", "unit" or "head"
    code: str  # unit code; "stem" / "head" otherwise
    c_in: int
    c_out: int
    stride: int
    inputs: tuple[tuple[int, ...], ...]

    @property
    def key(self) -> str:
        shapes = ",".join("x".join(map(str, s[1:])) for s in self.inputs)
        return f"{self.kind}/{self.code}/{shapes}/{self.c_out}/s{self.stride}"

    @property
    def identity(self) -> bool:
        return self.kind == "unit" and self.code == "skip" and self.stride == 1 and self.c_in == self.c_out

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "code": self.code,
            "c_in": self.c_in,
            "c_out": self.c_out,
            "stride": self.stride,
            "inputs": [list(s) for s in self.inputs],
        }


def template_arch(space: str, input_shape=None, backbone: str | None = None):
    """A valid architecture of the space at ``input_shape`` (its genotype does not matter)."""
    from deploycc.models import parse_arch, sample_genotype

    if space not in DEFAULT_SHAPES:
        raise UserError(f"--space {space!r}: a LUT needs a space with searchable layers (squeezenas or fbnet)")
    d = {
        "format": "deploycc-arch",
        "version": 1,
        "name": f"lut-{space}",
        "space": space,
        "genotype": sample_genotype(space, random.Random(0), backbone or "small"),
        "input_shape": list(input_shape or DEFAULT_SHAPES[space]),
    }
    if space == "squeezenas":
        d["backbone"] = backbone or "small"
    elif backbone:
        raise UserError(f"--backbone applies to the squeezenas space only, not {space}")
    return parse_arch(d, source="--input-shape")


def layer_candidates(space: str, layer) -> dict[str, EntrySpec]:
    """Every legal candidate unit of one searchable layer, by unit code."""
    from deploycc.models import unit_codes
    from deploycc.models.spaces import unit_problem

    return {
        code: EntrySpec("unit", code, layer.c_in, layer.c_out, layer.stride, (layer.input_shape,))
        for code in unit_codes(space)
        if unit_problem(space, code, layer.c_in, layer.c_out, layer.stride) is None
    }


def stem_spec(arch) -> EntrySpec:
    from deploycc.models import searchable_layers

    first = searchable_layers(arch)[0]
    return EntrySpec("stem", "stem", arch.input_shape[1], first.c_in, 2, (tuple(arch.input_shape),))


def head_spec(arch) -> EntrySpec:
    from deploycc.models import build_head

    shapes = tuple(tuple(s) for s in build_head(arch).input_shapes)
    return EntrySpec(
        "head", f"head-{arch.backbone or arch.space}-{arch.head}", shapes[0][1], arch.num_classes, 1, shapes
    )


def build_entry_module(spec: EntrySpec, arch):
    from deploycc.models import build_head, build_stem, build_unit

    if spec.kind == "stem":
        return build_stem(arch)
    if spec.kind == "head":
        return build_head(arch)
    return build_unit(arch.space, spec.code, spec.c_in, spec.c_out, spec.stride)


def export_entry(spec: EntrySpec, arch, path: Path) -> Path:
    """Export the entry alone to ONNX with BatchNorm kept, as the full network's export does, so
    the unit goes through the same passes (fold-bn) and backend as the network."""
    import onnx
    import torch

    from deploycc.models.weights import randomize

    torch.manual_seed(0)
    module = randomize(build_entry_module(spec, arch), seed=0).eval()
    names = ["x"] if len(spec.inputs) == 1 else ["high", "low"][: len(spec.inputs)]
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            tuple(torch.zeros(s) for s in spec.inputs),
            buf,  # type: ignore[arg-type]  # the TorchScript exporter writes to a file object too
            dynamo=False,
            opset_version=17,
            input_names=names,
            output_names=["y"],
            training=torch.onnx.TrainingMode.PRESERVE,
            do_constant_folding=True,
        )
    model = onnx.load_from_string(buf.getvalue())
    onnx.save(model, str(path))
    return path
