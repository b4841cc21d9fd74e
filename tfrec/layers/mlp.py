"""`mlp`: a stack of Dense layers with optional dropout (a `keras.Sequential`).

Example:

```python
tower = mlp([128, 64], name="query_mlp", dropout=0.1)
hidden = tower(keras.ops.ones((2, 8)))   # [2, 64]
```
"""

import keras


def mlp(units, name, dropout=0.0, activation="relu"):
    """`keras.Sequential` of `Dense(u, activation)` (+ `Dropout`) for each `u` in `units`."""
    layers = []
    for i, u in enumerate(units):
        layers.append(keras.layers.Dense(int(u), activation=activation, name=f"{name}_{i}"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    return keras.Sequential(layers, name=name)
