"""Lens mass profiles: SIE, NFW, elliptical NFW, member-galaxy populations and their sums.

Every profile is registered by class name (:func:`get_profile`, :func:`available_profiles`);
other packages add theirs through the ``clusterlens.profiles`` entry-point group.
"""

from clusterlens.profiles.base import (
    ENTRY_POINT_GROUP,
    Composite,
    MassProfile,
    available_profiles,
    get_profile,
    register_profile,
)
from clusterlens.profiles.cse_nfw import EllipticalNFW
from clusterlens.profiles.nfw import ENFW, NFW, nfw_angles
from clusterlens.profiles.numerical import ConvergenceProfile
from clusterlens.profiles.sie import SIE, SIEPopulation

for _cls in (SIE, SIEPopulation, NFW, ENFW, EllipticalNFW):
    register_profile(_cls)
del _cls

__all__ = [
    "MassProfile",
    "Composite",
    "ConvergenceProfile",
    "SIE",
    "SIEPopulation",
    "NFW",
    "ENFW",
    "EllipticalNFW",
    "nfw_angles",
    "ENTRY_POINT_GROUP",
    "register_profile",
    "get_profile",
    "available_profiles",
]
