"""deploycc.verify: does an artifact keep its accuracy, and how fast is it.

``evaluate`` runs any artifact's Session over a labelled dataset (mIoU with the Cityscapes
arithmetic of ``deploycc.core.accuracy``, agreement with an FP32 reference, streaming with
bounded memory); ``measure`` is the one latency-measurement protocol every command that times
anything uses.

May import ``deploycc.pipeline`` (to open an artifact) and everything below it; never lut, fleet,
ci, train or cli.
"""
