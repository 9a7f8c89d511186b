"""deploycc.train: deterministic PyTorch CPU training of a segmentation architecture
(``deploycc train``), exported to ONNX with its recipe and validation mIoU in the metadata.

May import ``deploycc.verify`` (to score the exported model) and everything below it; never lut,
fleet, ci or cli.
"""

from .trainer import TrainConfig, train

__all__ = ["TrainConfig", "train"]
