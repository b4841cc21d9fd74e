"""`UserValueModel`: a user's future value from user features alone (no item tower).

What a transactions table (one row per customer) trains: the user features
(`UserFeatureEncoder`) and a `UserValueTask`.

Example:

```python
model = build_model(customer_schema, ModelConfig(), customers_df)   # no item columns: a UserValueModel
model.predict_user_value(customer_features)   # {"user_value", "value_probability", ...}
```
"""

from __future__ import annotations

import keras

from tfrec.layers.serialization import deserialize_sublayers
from tfrec.models.task_model import TaskModel


@keras.saving.register_keras_serializable(package="tfrec")
class UserValueModel(TaskModel):
    """Args: `schema`, `config`, `user_encoder` (a `UserFeatureEncoder`), `value_task` (a `UserValueTask`)."""

    def __init__(self, schema, config, user_encoder, value_task, **kwargs):
        super().__init__(schema, config, **kwargs)
        self.user_encoder = user_encoder
        self.value_task = value_task
        self.tasks = [value_task]

    def components(self):
        return [self.user_encoder, self.value_task]

    def predict_user_value(self, features, training=False):
        """Value outputs from user features."""
        profile, _ = self.user_encoder(features, training=training)
        return self.value_task(profile, training=training)

    def call(self, features, training=False):
        return self.predict_user_value(features, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "user_encoder": keras.saving.serialize_keras_object(self.user_encoder),
                "value_task": keras.saving.serialize_keras_object(self.value_task),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_sublayers(config, ("user_encoder", "value_task")))
