"""PPO (Schulman et al. 2017) for CartPole: clipped surrogate, GAE, several
environments stepped in lock-step, learning rate and clip range annealed to 0.

One loop step is one PPO iteration: a rollout of `rollout_steps` on each of
`envs` environments with the current stochastic policy, then
`update_epochs` passes of minibatch updates over it. An epoch is
`iterations_per_epoch` iterations. The defaults follow the tuned CartPole-v1
settings of RL Baselines3 Zoo (8 x 32 steps, 20 update epochs, gamma 0.98,
GAE lambda 0.8, no entropy bonus, lr 1e-3), which solve it in about 100k steps.
"""

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

import zoo
from zoo.runtime import TorchBackend
from zoo.tasks.policy import POLICY_METRIC_DESCRIPTIONS, make_environment, policy_metrics
from zoo.plugins.cartpole.model import ActorCritic, CartPoleConfig, greedy_policy

# Training environments reset from seeds far above the evaluation seeds 0..99.
TRAIN_SEED_BASE = 10_000


class PPORecipe(zoo.Recipe):
    metric_descriptions = POLICY_METRIC_DESCRIPTIONS

    def __init__(self, spec, options):
        super().__init__(spec, options)
        self.ppo = self.settings
        planned = options.epochs * self.ppo["iterations_per_epoch"]
        self.total_iterations = min(planned, options.max_steps) if options.max_steps else planned
        self.data_description = (
            f"gymnasium CartPole-v1 rollouts: {self.ppo['envs']} environments reset from seeds "
            f"{TRAIN_SEED_BASE + 1000 * options.seed}+, {self.ppo['rollout_steps']} steps each per PPO iteration, "
            f"{self.total_iterations * self.ppo['envs'] * self.ppo['rollout_steps'] * options.world_size:,} "
            f"environment steps in all"
        )
        self.model = ActorCritic(CartPoleConfig(**self.config)).to(options.device)
        self.networks = {"policy": self.model}
        self.optimizers = {"policy": torch.optim.Adam(self.model.parameters(), lr=options.lr, eps=1e-5)}
        self.shipped = "policy"
        self.graph = self.spec.graph()
        self.envs = [make_environment(self.graph) for _ in range(self.ppo["envs"])]
        # Under torchrun each process steps its own environments from its own seeds.
        first_seed = TRAIN_SEED_BASE + 1000 * options.seed + 100 * options.rank
        self.observations = np.stack([env.reset(seed=first_seed + i)[0] for i, env in enumerate(self.envs)])
        self.running_returns = np.zeros(len(self.envs))
        self.finished_returns: deque[float] = deque(maxlen=20)

    def batches(self, epoch):
        per_epoch = self.ppo["iterations_per_epoch"]
        return range(epoch * per_epoch, (epoch + 1) * per_epoch)

    def step(self, iteration):
        # Linear annealing of the step size and the clip range, from the global
        # iteration number so that a resumed run follows the same schedule.
        remaining = max(0.0, 1.0 - iteration / self.total_iterations)
        for group in self.optimizers["policy"].param_groups:
            group["lr"] = self.options.lr * remaining
        clip = self.ppo["clip"] * remaining
        rollout = self.collect_rollout()
        losses = self.update(rollout, clip)
        recent = float(np.mean(self.finished_returns)) if self.finished_returns else 0.0
        return {"return": recent, **losses}

    def _tensor(self, array):
        return torch.as_tensor(np.asarray(array, dtype=np.float32), device=self.options.device)

    @torch.no_grad()
    def collect_rollout(self):
        steps, count, gamma = self.ppo["rollout_steps"], len(self.envs), self.ppo["gamma"]
        observations = np.zeros((steps, count, self.observations.shape[1]), dtype=np.float32)
        actions = np.zeros((steps, count), dtype=np.int64)
        log_probs = np.zeros((steps, count), dtype=np.float32)
        values = np.zeros((steps, count), dtype=np.float32)
        rewards = np.zeros((steps, count), dtype=np.float32)
        ended = np.zeros((steps, count), dtype=np.float32)
        self.model.eval()
        for t in range(steps):
            logits, value = self.model(self._tensor(self.observations))
            distribution = torch.distributions.Categorical(logits=logits)
            action = distribution.sample()
            observations[t] = self.observations
            actions[t] = action.cpu().numpy()
            log_probs[t] = distribution.log_prob(action).cpu().numpy()
            values[t] = value.cpu().numpy()
            for i, env in enumerate(self.envs):
                observation, reward, terminated, truncated, _ = env.step(int(actions[t, i]))
                self.running_returns[i] += reward
                if truncated and not terminated:
                    # A time limit is not a failure: bootstrap from the state it cut off.
                    _, final_value = self.model(self._tensor(observation[None]))
                    reward += gamma * float(final_value[0])
                rewards[t, i] = reward
                if terminated or truncated:
                    ended[t, i] = 1.0
                    self.finished_returns.append(self.running_returns[i])
                    self.running_returns[i] = 0.0
                    observation, _ = env.reset()
                self.observations[i] = observation
        _, next_value = self.model(self._tensor(self.observations))
        advantages = np.zeros_like(rewards)
        following_value, following_advantage = next_value.cpu().numpy(), np.zeros(count, dtype=np.float32)
        for t in reversed(range(steps)):
            carry = 1.0 - ended[t]
            delta = rewards[t] + gamma * following_value * carry - values[t]
            following_advantage = delta + gamma * self.ppo["gae_lambda"] * carry * following_advantage
            advantages[t] = following_advantage
            following_value = values[t]
        flat = lambda array: array.reshape(steps * count, *array.shape[2:])  # noqa: E731
        return {
            "observations": self._tensor(flat(observations)),
            "actions": torch.as_tensor(flat(actions), device=self.options.device),
            "log_probs": self._tensor(flat(log_probs)),
            "advantages": self._tensor(flat(advantages)),
            "returns": self._tensor(flat(advantages + values)),
        }

    def update(self, rollout, clip):
        self.model.train()
        size = len(rollout["actions"])
        minibatch = min(self.options.batch_size, size)
        optimizer = self.optimizers["policy"]
        totals = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0}
        updates = 0
        for _ in range(self.ppo["update_epochs"]):
            order = torch.randperm(size, device=self.options.device)
            for start in range(0, size - minibatch + 1, minibatch):
                index = order[start : start + minibatch]
                logits, value = self.model(rollout["observations"][index])
                distribution = torch.distributions.Categorical(logits=logits)
                ratio = torch.exp(distribution.log_prob(rollout["actions"][index]) - rollout["log_probs"][index])
                advantage = rollout["advantages"][index]
                advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
                policy_loss = -torch.min(ratio * advantage, ratio.clamp(1 - clip, 1 + clip) * advantage).mean()
                value_loss = F.mse_loss(value, rollout["returns"][index])
                entropy = distribution.entropy().mean()
                loss = policy_loss + self.ppo["value_coef"] * value_loss - self.ppo["entropy_coef"] * entropy
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.ppo["max_grad_norm"])
                optimizer.step()
                totals["policy_loss"] += policy_loss.item()
                totals["value_loss"] += value_loss.item()
                totals["entropy"] += entropy.item()
                updates += 1
        return {key: value / max(updates, 1) for key, value in totals.items()}

    def evaluate(self):
        for env in self.envs:
            env.close()
        model = self.networks["policy"].cpu().eval()  # the bare module, also when self.model is DDP-wrapped
        backend = TorchBackend(greedy_policy(model), self.graph)
        return policy_metrics(backend, self.ppo["eval_episodes"])
