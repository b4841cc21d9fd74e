"""`deserialize_sublayers`: the `from_config` step of layers that hold other layers.

A layer whose `get_config` serialises its sublayers (`keras.saving.serialize_keras_object`)
turns them back into layers before calling its constructor.

Example:

```python
config = {"head": keras.saving.serialize_keras_object(keras.layers.Dense(2)), "body": None, "units": 3}
config = deserialize_sublayers(config, ("head", "body"))   # head: a Dense layer; body and units as given
```
"""

import keras


def deserialize_sublayers(config, keys):
    """A copy of `config` with each of `keys` that holds a serialised object (a dict) deserialised.

    Other values (None, or a layer given as it is) are kept.
    """
    config = dict(config)
    for key in keys:
        if isinstance(config.get(key), dict):
            config[key] = keras.saving.deserialize_keras_object(config[key])
    return config
