"""Where a profiled node came from: the searchable layer and unit, read from its exported name.

``torch.onnx.export`` names each node after the module path it was traced in
(``/encoder/residuals.3/conv1/Conv``); the passes and ONNX Runtime's fusions keep the name of
the node a fused node grew from (``..._fused`` or an ``_nchwc`` suffix). The module layout is the
one ``models/squeezenas.py`` and ``models/fbnet.py`` define:

| space | stem | searchable layer i | head (everything after the last searchable layer) |
|---|---|---|---|
| squeezenas | ``encoder.conv1`` | ``encoder.residuals.<i>`` | ``encoder.last_conv``, ``decoder`` |
| fbnet | ``stem`` | ``units.<i>`` | ``head`` |
"""

from __future__ import annotations

import re

_END = r"(\.\d+)*(/|$)"  # "/stem/stem.2/Relu", or "/stem.0" as a module path spells it
_PATTERNS = {
    "squeezenas": (
        re.compile(r"(^|/)encoder/conv1" + _END),
        re.compile(r"(^|/)encoder/residuals\.(\d+)(/|$)"),
        re.compile(r"(^|/)(encoder/last_conv|decoder)" + _END),
    ),
    "fbnet": (re.compile(r"(^|/)stem" + _END), re.compile(r"(^|/)units\.(\d+)(/|$)"), re.compile(r"(^|/)head" + _END)),
}


def place_of(name: str, arch: dict | None) -> tuple[str | None, str | None]:
    """(layer, unit) of the node called ``name`` in a network of architecture ``arch`` (the
    manifest's record); (None, None) when there is no architecture or the name says nothing."""
    if not arch or arch.get("space") not in _PATTERNS:
        return None, None
    stem, unit, head = _PATTERNS[arch["space"]]
    match = unit.search(name)
    if match:
        i = int(match.group(2))
        genotype = arch.get("genotype") or []
        return f"layer {i}", genotype[i] if i < len(genotype) else None
    if stem.search(name):
        return "stem", "stem"
    if head.search(name):
        return "head", "head"
    return None, None
