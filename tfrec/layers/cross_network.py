"""`CrossNetwork`: a stack of DCN-v2 crosses (keras-rs `FeatureCross`).

`x_{l+1} = x0 * (W x_l + b) + x_l` for each layer (Wang et al., WWW 2021).

Example:

```python
crosses = CrossNetwork(num_layers=2)
y = crosses(keras.ops.ones((4, 8)))   # [4, 8]
```
"""

import keras
import keras_rs


@keras.saving.register_keras_serializable(package="tfrec")
class CrossNetwork(keras.layers.Layer):
    """Args: `num_layers`: how many `FeatureCross` layers (0 = identity)."""

    def __init__(self, num_layers=2, **kwargs):
        super().__init__(**kwargs)
        self.num_layers = int(num_layers)
        self.crosses = [keras_rs.layers.FeatureCross(name=f"cross_{i}") for i in range(self.num_layers)]

    def build(self, input_shape):
        # keras-rs `FeatureCross.build` creates its Dense layers without
        # building them (they build on first call): one call on zeros creates
        # all the state, as a reloaded model needs.
        for cross in self.crosses:
            cross.build(input_shape)
        x0 = keras.ops.zeros((1,) + tuple(input_shape[1:]))
        self.built = True
        self.call(x0)

    def call(self, x0):
        x = x0
        for cross in self.crosses:
            x = cross(x0, x)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"num_layers": self.num_layers})
        return config
