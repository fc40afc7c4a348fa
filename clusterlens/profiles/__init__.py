"""Lens mass profiles: SIE, NFW, elliptical NFW, member-galaxy populations and their sums."""

from clusterlens.profiles.base import Composite, MassProfile

__all__ = ["MassProfile", "Composite"]
