"""Lens mass profiles: SIE, NFW, elliptical NFW, member-galaxy populations and their sums."""

from clusterlens.profiles.base import Composite, MassProfile
from clusterlens.profiles.nfw import ENFW, NFW, nfw_angles
from clusterlens.profiles.sie import SIE, SIEPopulation

__all__ = ["MassProfile", "Composite", "SIE", "SIEPopulation", "NFW", "ENFW", "nfw_angles"]
