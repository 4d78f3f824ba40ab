"""Small custom gymnasium environments (``gym.make("CoursePointMass-v0")`` after importing this)."""

from .point_mass import POINT_MASS_ID, PointMassEnv, make_point_mass

__all__ = ["POINT_MASS_ID", "PointMassEnv", "make_point_mass"]
