"""Lens mass profiles: SIE, dPIE, NFW, elliptical NFW, member-galaxy populations and sums.

Every profile is registered by class name and by a lowercase alias (``"sie"``,
``"sie_population"``, ``"dpie"``, ``"dpie_population"``, ``"nfw"``, ``"enfw"``,
``"cse_nfw"``: the names the mock configuration uses) (:func:`get_profile`,
:func:`available_profiles`); other packages add theirs through the ``clusterlens.profiles``
entry-point group.
"""

from clusterlens.profiles.base import (
    ENTRY_POINT_GROUP,
    Composite,
    MassProfile,
    ScaledProfile,
    available_profiles,
    get_profile,
    register_profile,
)
from clusterlens.profiles.cse_nfw import EllipticalNFW
from clusterlens.profiles.dpie import DPIE, DPIEPopulation, member_radii
from clusterlens.profiles.nfw import ENFW, NFW, nfw_angles
from clusterlens.profiles.numerical import ConvergenceProfile
from clusterlens.profiles.sie import SIE, SIEPopulation

#: Lowercase registry aliases of the built-in profiles (the mock configuration's names).
ALIASES = {
    "sie": SIE,
    "sie_population": SIEPopulation,
    "dpie": DPIE,
    "dpie_population": DPIEPopulation,
    "nfw": NFW,
    "enfw": ENFW,
    "cse_nfw": EllipticalNFW,
}
for _cls in (SIE, SIEPopulation, DPIE, DPIEPopulation, NFW, ENFW, EllipticalNFW):
    register_profile(_cls)
for _name, _cls in ALIASES.items():
    register_profile(_cls, name=_name)
del _cls, _name

__all__ = [
    "MassProfile",
    "Composite",
    "ScaledProfile",
    "ConvergenceProfile",
    "DPIE",
    "DPIEPopulation",
    "member_radii",
    "ALIASES",
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
