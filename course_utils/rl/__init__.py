"""Deep RL with soft optimality: soft Q-learning (chapter 06) and Soft Actor-Critic (chapter 07).

Building blocks, each in its own module:

* ``buffer``: :class:`ReplayBuffer` of (s, a, r, s', terminated), sampled as torch tensors.
* ``networks``: :func:`mlp`, :class:`QNetwork`, :class:`BoltzmannPolicy`,
  :class:`TwinQNetwork`, :class:`ValueNetwork`, :class:`SquashedGaussianPolicy`.
* ``losses``: the soft target and Boltzmann policy of soft Q-learning, the SAC losses J_V,
  J_Q, J_pi and J(alpha), and :func:`polyak_update` (reference versions of the exercises).
* ``soft_dqn``, ``sac``: reference training loops :func:`train_soft_dqn`, :func:`train_dqn`,
  :func:`train_sac`, with their hyper-parameters in :class:`SoftDQNConfig`, :class:`SACConfig`.
* ``evaluation``: :func:`evaluate` a policy over N seeded episodes.

Example::

    from course_utils.rl import train_soft_dqn, evaluate
    result = train_soft_dqn("CartPole-v1", total_steps=30_000, seed=0, alpha=0.3)
    print(result.final_eval)                          # greedy policy, 10 seeded episodes
    evaluate(result.policy, "CartPole-v1", deterministic=False)   # the Boltzmann policy
"""

from . import experts as experts  # analytic expert controllers and demonstrations (chapter 10)
from .buffer import Batch, ReplayBuffer, relabel
from .discrete_sac import (
    CategoricalPolicy,
    DiscreteSACAgent,
    DiscreteSACConfig,
    DiscreteSACResult,
    TwinDiscreteQNetwork,
    discrete_sac_update,
    train_discrete_sac,
)
from .evaluation import EvalResult, LearningCurve, TrainingRun, evaluate
from .losses import (
    boltzmann_probs,
    boltzmann_sample,
    polyak_update,
    q_learning_loss,
    sac_policy_loss,
    sac_q_loss,
    sac_value_loss,
    sac_value_target,
    soft_q_target,
    soft_value,
    temperature_loss,
)
from .networks import (
    BoltzmannPolicy,
    QNetwork,
    SquashedGaussianPolicy,
    TwinQNetwork,
    ValueNetwork,
    mlp,
)
from .sac import SACAgent, SACConfig, SACResult, sac_update, train_sac
from .soft_dqn import SoftDQNConfig, SoftDQNResult, soft_dqn_update, train_dqn, train_soft_dqn

__all__ = [
    "Batch",
    "BoltzmannPolicy",
    "CategoricalPolicy",
    "DiscreteSACAgent",
    "DiscreteSACConfig",
    "DiscreteSACResult",
    "EvalResult",
    "LearningCurve",
    "QNetwork",
    "ReplayBuffer",
    "SACAgent",
    "SACConfig",
    "SACResult",
    "SoftDQNConfig",
    "SoftDQNResult",
    "SquashedGaussianPolicy",
    "TrainingRun",
    "TwinDiscreteQNetwork",
    "TwinQNetwork",
    "ValueNetwork",
    "boltzmann_probs",
    "boltzmann_sample",
    "discrete_sac_update",
    "evaluate",
    "mlp",
    "polyak_update",
    "q_learning_loss",
    "relabel",
    "sac_policy_loss",
    "sac_q_loss",
    "sac_update",
    "sac_value_loss",
    "sac_value_target",
    "soft_dqn_update",
    "soft_q_target",
    "soft_value",
    "temperature_loss",
    "train_discrete_sac",
    "train_dqn",
    "train_sac",
    "train_soft_dqn",
]
