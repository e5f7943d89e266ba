"""CartPole: a PPO actor-critic that balances gymnasium's CartPole-v1."""

import zoo

OBSERVATION_LAYOUT = [
    "cart position (m, terminates beyond +-2.4)",
    "cart velocity (m/s)",
    "pole angle (rad from upright, terminates beyond +-0.2095)",
    "pole angular velocity (rad/s)",
]
ACTION_MEANINGS = {"0": "push the cart to the left", "1": "push the cart to the right"}


@zoo.hookimpl
def register_models(register):
    register(
        zoo.ModelSpec(
            name="cartpole",
            task="policy",
            description="PPO actor-critic (two 64-64 tanh MLPs) that balances gymnasium's CartPole-v1",
            builder="zoo.plugins.cartpole.model:build",
            config={"observation_dim": 4, "action_count": 2, "hidden": 64},
            weights={
                "default": zoo.WeightsSpec(uri="weights/default.safetensors", card="weights/default.card.toml"),
            },
            trainer="cartpole",
            graphs="zoo.plugins.cartpole:graphs",
        )
    )


def graphs(config):
    """The greedy policy for a config: the observation size and the number of actions follow it."""
    return (
        zoo.GraphSpec(
            module="zoo.plugins.cartpole.model:greedy_policy",
            inputs=(zoo.TensorSpec("observation", ("batch", config["observation_dim"]),
                                   description="CartPole-v1 observation, raw float32"),),
            outputs=(
                zoo.TensorSpec("logits", ("batch", config["action_count"]), description="unnormalised action log-probabilities"),
                zoo.TensorSpec("action", ("batch",), dtype="int64", description="greedy action: argmax of logits"),
            ),
            preprocessing={
                "environment": {"id": "CartPole-v1", "library": "gymnasium>=1.0"},
                "observation": {"layout": OBSERVATION_LAYOUT, "scaling": "none: feed the observation as is"},
            },
            postprocessing={
                "action": {"meanings": ACTION_MEANINGS, "rule": "apply directly; it is argmax(logits)"},
                "logits": {"softmax": "gives the stochastic policy used in training"},
            },
            description="greedy policy: observation -> (logits, action)",
        ),
    )


@zoo.hookimpl
def register_trainers(register):
    register(
        zoo.TrainerSpec(
            name="cartpole",
            recipe="zoo.plugins.cartpole.train:PPORecipe",
            defaults={"epochs": 40, "batch_size": 256, "lr": 1e-3},
            description="PPO (clipped objective, GAE) on 8 CartPole-v1 environments; an epoch is 10 rollouts of 8 x 32 steps",
        )
    )
