"""`MultiTaskBlock`: shared bottom, MMoE or PLE between the input and task towers.

* `shared_bottom`: one MLP whose output every task reads.
* `mmoe` (Ma et al., KDD 2018): `num_experts` shared expert MLPs and a softmax
  gate per task that mixes them.
* `ple` (Tang et al., RecSys 2020, one CGC level): per-task experts plus shared
  experts; each task's gate mixes its own and the shared experts, which
  limits negative transfer between tasks that disagree.

Example:

```python
block = MultiTaskBlock("mmoe", num_tasks=2, num_experts=4, units=[64])
ctr_in, relevance_in = block(keras.ops.ones((4, 16)))   # one [4, 64] tensor per task
```
"""

import keras
import tensorflow as tf

from tfrec.layers.mlp import mlp

STRUCTURES = ("shared_bottom", "mmoe", "ple")


@keras.saving.register_keras_serializable(package="tfrec")
class MultiTaskBlock(keras.layers.Layer):
    """Maps `[batch, d]` to a list of `num_tasks` tensors `[batch, units[-1]]`.

    Args:
        structure: `"shared_bottom"`, `"mmoe"` or `"ple"`.
        num_tasks: number of task outputs.
        num_experts: shared experts (MMoE, PLE).
        num_task_experts: experts owned by each task (PLE).
        units: hidden sizes of each expert MLP (or of the shared bottom).
        activation: activation of the hidden layers.
        dropout: dropout after each hidden layer.
    """

    def __init__(
        self,
        structure="shared_bottom",
        num_tasks=1,
        num_experts=4,
        num_task_experts=1,
        units=(64,),
        activation="relu",
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if structure not in STRUCTURES:
            raise ValueError(f"MultiTaskBlock: structure must be one of {STRUCTURES}, got {structure!r}")
        if num_tasks < 1:
            raise ValueError(f"MultiTaskBlock: num_tasks must be >= 1, got {num_tasks}")
        self.structure = structure
        self.num_tasks = int(num_tasks)
        self.num_experts = int(num_experts)
        self.num_task_experts = int(num_task_experts)
        self.units = [int(u) for u in units]
        self.activation = activation
        self.dropout = float(dropout)
        if structure == "shared_bottom":
            self.bottom = mlp(self.units, "shared_bottom", dropout, activation)
            return
        self.experts = [mlp(self.units, f"expert_{i}", dropout, activation) for i in range(self.num_experts)]
        n_gate = self.num_experts
        if structure == "ple":
            self.task_experts = [
                [mlp(self.units, f"task_{t}_expert_{i}", dropout, activation) for i in range(self.num_task_experts)]
                for t in range(self.num_tasks)
            ]
            n_gate += self.num_task_experts
        self.gates = [keras.layers.Dense(n_gate, activation="softmax", name=f"gate_{t}") for t in range(self.num_tasks)]

    def build(self, input_shape):
        if self.structure == "shared_bottom":
            self.bottom.build(input_shape)
        else:
            for expert in self.experts + [e for task in getattr(self, "task_experts", []) for e in task]:
                expert.build(input_shape)
            for gate in self.gates:
                gate.build(input_shape)
        self.built = True

    def call(self, x, training=False):
        if self.structure == "shared_bottom":
            shared = self.bottom(x, training=training)
            return [shared] * self.num_tasks
        shared = [e(x, training=training) for e in self.experts]
        outputs = []
        for t in range(self.num_tasks):
            experts = shared
            if self.structure == "ple":
                experts = [e(x, training=training) for e in self.task_experts[t]] + shared
            stacked = tf.stack(experts, axis=1)  # [B, E, units]
            weights = self.gates[t](x)[:, :, None]  # [B, E, 1]
            outputs.append(tf.reduce_sum(stacked * weights, axis=1))
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "structure": self.structure,
                "num_tasks": self.num_tasks,
                "num_experts": self.num_experts,
                "num_task_experts": self.num_task_experts,
                "units": self.units,
                "activation": self.activation,
                "dropout": self.dropout,
            }
        )
        return config
