"""An actor-critic for CartPole: two small MLPs over the 4-number observation.

The actor maps an observation to action logits, the critic to a state value.
They share no layers, because on tiny problems a shared trunk lets the
value loss pull the policy's features around. Only the actor is exported:
`greedy_policy(model)` wraps it into the deployed graph, which returns the
logits and the arg-max action so that a controller needs no post-processing.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class CartPoleConfig:
    observation_dim: int = 4  # cart position, cart velocity, pole angle, pole angular velocity
    action_count: int = 2  # 0 push left, 1 push right
    hidden: int = 64


def _mlp(config: CartPoleConfig, outputs: int, final_gain: float) -> nn.Sequential:
    layers = nn.Sequential(
        nn.Linear(config.observation_dim, config.hidden),
        nn.Tanh(),
        nn.Linear(config.hidden, config.hidden),
        nn.Tanh(),
        nn.Linear(config.hidden, outputs),
    )
    # Orthogonal initialisation, as in the PPO reference implementations; a small
    # gain on the actor's last layer starts the policy close to uniform.
    for index, layer in enumerate(l for l in layers if isinstance(l, nn.Linear)):
        nn.init.orthogonal_(layer.weight, final_gain if index == 2 else 2 ** 0.5)
        nn.init.zeros_(layer.bias)
    return layers


class ActorCritic(nn.Module):
    def __init__(self, config: CartPoleConfig):
        super().__init__()
        self.config = config
        self.actor = _mlp(config, config.action_count, final_gain=0.01)
        self.critic = _mlp(config, 1, final_gain=1.0)

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """observation (batch, 4) -> action logits (batch, 2), state value (batch,)."""
        return self.actor(observation), self.critic(observation).squeeze(-1)


class GreedyPolicy(nn.Module):
    """The deployed graph: observation -> (logits, arg-max action as int64)."""

    def __init__(self, model: ActorCritic):
        super().__init__()
        self.actor = model.actor

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.actor(observation)
        return logits, torch.argmax(logits, dim=-1)


def greedy_policy(model: ActorCritic) -> GreedyPolicy:
    return GreedyPolicy(model).eval()


def build(**config) -> ActorCritic:
    return ActorCritic(CartPoleConfig(**config))
