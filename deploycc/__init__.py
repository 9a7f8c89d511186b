"""deploycc: take a searched CNN to a verified, deployable artifact for a given piece of hardware.

Pipeline (each arrow one district, data only moving forward; docs/architecture.md is the map)::

    arch.json -export-> model.onnx -load-> graph -passes-> graph' -quantize-> graph''
              -compile-> artifact/ -verify-> report

Districts, top to bottom (imports flow downward only; pyproject.toml [tool.importlinter]):
cli > ci | fleet | train > lut > verify > build > quantize > passes > targets > models | data > core.
"""

__version__ = "0.1.0"
