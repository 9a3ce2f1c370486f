"""Reference GANs on scikit-learn's 8x8 digits, trained entirely through the golden
model (:mod:`ganpu.model`): data, networks, training, quality score, tensor export,
CLI commands and the model report."""

from .data import load_digits_scaled
from .nets import build_gan
from .train import GAN, TrainConfig
from .quality import DigitScorer
from .export import export_layers, save_export

__all__ = ["load_digits_scaled", "build_gan", "GAN", "TrainConfig", "DigitScorer",
           "export_layers", "save_export"]
