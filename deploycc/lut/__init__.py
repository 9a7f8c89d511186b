"""Search-time latency lookup tables: build them on a target, predict with them, validate them
against end-to-end measurements of compiled networks, and gate artifacts on their prediction.

Python API for search loops::

    from deploycc.lut import load_lut, Predictor
    pred = Predictor(load_lut("cpu-ort.lut.json"))
    pred.predict([genotype, ...])        # LUT sums (ms), vectorized
    pred.expected(probs)                 # differentiable expectation for FBNet-style searches
    pred.measure(genotype)               # built and timed end to end, on request

May import ``deploycc.verify`` (the measurement protocol), ``deploycc.pipeline`` (entries and
architectures are built with the full pipeline) and everything below; never fleet, ci, train or cli
(a fleet plugs in as a timer, see ``workflow``).
"""

from .predict import Predictor
from .table import LUT, check_compatible, load_lut, save_lut

__all__ = ["LUT", "Predictor", "check_compatible", "load_lut", "save_lut"]
