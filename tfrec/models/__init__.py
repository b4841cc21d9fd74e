"""Models: the two-tower multi-task model, its configuration and builder."""

from tfrec.models.builder import build_model, build_text_encoder
from tfrec.models.config import ModelConfig, TextConfig
from tfrec.models.two_tower import TwoTowerModel

__all__ = ["ModelConfig", "TextConfig", "TwoTowerModel", "build_model", "build_text_encoder"]
