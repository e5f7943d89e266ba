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
            # The tuned CartPole-v1 settings of RL Baselines3 Zoo.
            hyperparameters=(
                zoo.Setting("envs", 8, "environments stepped in lock-step"),
                zoo.Setting("rollout_steps", 32, "steps per environment in one PPO iteration's rollout"),
                zoo.Setting("iterations_per_epoch", 10, "PPO iterations in one epoch"),
                zoo.Setting("update_epochs", 20, "passes of minibatch updates over each rollout"),
                zoo.Setting("gamma", 0.98, "discount factor"),
                zoo.Setting("gae_lambda", 0.8, "GAE lambda"),
                zoo.Setting("clip", 0.2, "PPO clip range at the start (annealed to 0)"),
                zoo.Setting("entropy_coef", 0.0, "weight of the entropy bonus"),
                zoo.Setting("value_coef", 0.5, "weight of the value loss"),
                zoo.Setting("max_grad_norm", 0.5, "gradient clipping norm"),
                zoo.Setting("eval_episodes", 100, "evaluation episodes for the card (reset seeds 0..N-1)"),
            ),
            description="PPO (clipped objective, GAE) on 8 CartPole-v1 environments; an epoch is 10 rollouts of 8 x 32 steps",
        )
    )
