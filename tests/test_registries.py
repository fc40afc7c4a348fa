"""The two registries (mass profiles, networks) take the same forms and refuse alike."""

import pytest
from torch import nn

from clusterlens.errors import ParameterError
from clusterlens.nets import available_networks, get_network, register_network
from clusterlens.profiles import SIE, available_profiles, get_profile, register_profile


class _Net(nn.Module):
    def __init__(self, in_channels=3, num_classes=2):
        super().__init__()
        self.head = nn.Linear(in_channels, num_classes)

    def forward(self, x):
        return self.head(x.mean((2, 3)))


def _profile_class(name):
    return type(name, (SIE,), {})


@pytest.mark.parametrize("kind", ["profile", "network"])
def test_both_registries_take_the_same_forms(kind):
    register, get, available = {
        "profile": (register_profile, get_profile, available_profiles),
        "network": (register_network, get_network, available_networks),
    }[kind]

    def make(name):
        return _profile_class(name) if kind == "profile" else type(name, (_Net,), {})

    a, b, c, d, e = (make(f"RegForm{kind}{i}") for i in range(5))
    assert register(a) is a  # a call, under its own name
    assert register(f"{kind}-b", b) is b  # name first
    assert register(c, name=f"{kind}-c") is c  # keyword
    assert register(f"{kind}-d")(d) is d  # decorator with a name
    assert register(e) is e and register(e) is e  # the same object again is fine
    names = set(available())
    assert {a.__name__, f"{kind}-b", f"{kind}-c", f"{kind}-d", e.__name__} <= names
    if kind == "profile":
        assert get(f"{kind}-b") is b
    else:
        assert isinstance(get(f"{kind}-b"), b)
    other = make("RegFormOther")
    with pytest.raises(ParameterError, match="must be unused.*already registered"):
        register(f"{kind}-b", other)
    assert register(f"{kind}-b", other, overwrite=True) is other
    with pytest.raises(ParameterError, match="two names"):
        register("x", other, name="y")
    with pytest.raises(ParameterError, match="'name' parameter"):
        register(other, name="")


def test_each_registry_checks_what_it_holds():
    with pytest.raises(ParameterError, match="MassProfile subclass"):
        register_profile("not-a-profile", int)
    with pytest.raises(ParameterError, match="callable"):
        register_network("not-a-network", 3)
    with pytest.raises(ParameterError, match="timm:"):
        register_network("timm:resnet", _Net)
