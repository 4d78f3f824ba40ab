"""Helper package of the course "Reinforcement Learning as Probabilistic Inference".

One import gives a notebook what it needs::

    from course_utils import seed_everything, get_device, describe_environment

Chapter checks live in ``course_utils.checks.chNN``.
"""

from .runtime import configure_threads, describe_environment, get_device, seed_everything

__all__ = ["configure_threads", "describe_environment", "get_device", "seed_everything"]
__version__ = "0.1.0"
