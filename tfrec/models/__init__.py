"""Models: towers and tasks composed for a data shape, their configuration and builder."""

from tfrec.models.builder import build_model, build_text_encoder, task_names
from tfrec.models.config import ModelConfig, TextConfig
from tfrec.models.task_model import TaskModel
from tfrec.models.two_tower import TwoTowerModel
from tfrec.models.user_value_model import UserValueModel

__all__ = [
    "ModelConfig",
    "TaskModel",
    "TextConfig",
    "TwoTowerModel",
    "UserValueModel",
    "build_model",
    "build_text_encoder",
    "task_names",
]
