"""`run_layer_test`: one check of a layer, in the spirit of keras-hub's `TestCase.run_layer_test`.

For a layer and a batch of inputs it checks that the layer
1. builds and runs eagerly, giving finite outputs of the expected shapes;
2. runs symbolically (in a functional model on `keras.Input`s) with the same
   output shapes as eagerly;
3. survives a `get_config` -> `from_config` round trip: the clone has the same
   config and the same number of weights;
4. saved in a `.keras` file (inside a functional model) and loaded back,
   gives exactly the same outputs.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _flat(outputs):
    if isinstance(outputs, dict):
        return {k: outputs[k] for k in sorted(outputs)}
    if isinstance(outputs, (list, tuple)):
        return {str(i): o for i, o in enumerate(outputs)}
    return {"0": outputs}


def _symbolic_inputs(inputs):
    def spec(x, name=None):
        x = tf.convert_to_tensor(x)
        return keras.Input(shape=tuple(x.shape[1:]), dtype=x.dtype.name, name=name)

    if isinstance(inputs, dict):
        return {k: spec(v, name=k) for k, v in inputs.items()}
    return spec(inputs)


def run_layer_test(layer, inputs, tmp_path, expected_shapes=None, call_kwargs=None):
    """Runs the four checks above.

    `inputs` is the one positional input (a tensor or a dict of tensors), or
    a tuple of positional inputs. Returns the eager outputs (a dict of numpy
    arrays keyed as `_flat` does).
    """
    call_kwargs = call_kwargs or {}
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    eager = _flat(layer(*args, **call_kwargs))
    assert layer.built, f"{layer.name} is not built after a call"
    eager = {k: keras.ops.convert_to_numpy(v) for k, v in eager.items()}
    for key, value in eager.items():
        if np.issubdtype(value.dtype, np.floating):
            assert np.isfinite(value).all(), f"{layer.name}: output {key} is not finite"
    if expected_shapes is not None:
        assert {k: tuple(v.shape) for k, v in eager.items()} == {k: tuple(s) for k, s in expected_shapes.items()}

    symbolic_in = [_symbolic_inputs(a) for a in args]
    symbolic_out = layer(*symbolic_in, **call_kwargs)
    for key, tensor in _flat(symbolic_out).items():
        assert tuple(tensor.shape[1:]) == tuple(eager[key].shape[1:]), (layer.name, key, tensor.shape)

    config = layer.get_config()
    clone = type(layer).from_config(config)
    clone(*args, **call_kwargs)
    assert clone.get_config() == config, f"{layer.name}: get_config changes in a from_config round trip"
    assert len(clone.weights) == len(layer.weights)

    model = keras.Model(symbolic_in if len(args) > 1 else symbolic_in[0], symbolic_out)
    path = str(tmp_path / f"{layer.name}.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    again = _flat(loaded(list(args) if len(args) > 1 else args[0], training=False))
    for key in eager:
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(again[key]),
            eager[key],
            err_msg=f"{layer.name}: {key} differs after .keras save/load",
        )
    return eager
