"""Registry of lens-finding networks: built-in, registered in code, plugged in, or from timm.

A network is a ``torch.nn.Module`` class (or any callable returning one) that takes
``in_channels`` and ``num_classes`` keyword arguments and maps (batch, bands, y, x) images to
(batch, num_classes) logits.  Networks are found by name, in this order:

1. names registered with :func:`register_network` (the built-in ``"resnet18"`` and
   ``"convnext-nano"`` included);
2. entry points of the group ``clusterlens.nets`` of installed packages, e.g. in their
   ``pyproject.toml``::

       [project.entry-points."clusterlens.nets"]
       my-net = "mypackage.nets:MyNet"

3. ``"timm:<model>"`` (for example ``"timm:efficientnet_b0"``) when ``timm`` is installed.

The name and options a model was built with travel with it (``model.clusterlens_network``)
and into its checkpoints, so a checkpoint rebuilds exactly the same architecture.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

from torch import nn

from clusterlens._registry import registrar
from clusterlens.errors import ParameterError
from clusterlens.nets.convnext import ConvNeXtNano
from clusterlens.nets.resnet import ResNet18

__all__ = ["ENTRY_POINT_GROUP", "available_networks", "get_network", "register_network"]

ENTRY_POINT_GROUP = "clusterlens.nets"
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def _check_network(obj) -> None:
    if not callable(obj):
        raise ParameterError(
            f"The 'factory' parameter of register_network must be callable. Got {obj!r}."
        )


_register = registrar(lambda: _REGISTRY, "network", _check_network, "register_network")


def register_network(target=None, factory=None, *, name: str | None = None, overwrite=False):
    """Register a network class or factory under ``name``; usable as a decorator.

    The same forms as :func:`clusterlens.profiles.register_profile`:
    ``@register_network("name")``, ``@register_network`` (under the class's own name),
    ``register_network("name", factory)`` or ``register_network(factory, name="name")``.
    A name already taken by another factory raises
    :class:`~clusterlens.errors.ParameterError` unless ``overwrite=True``; names starting
    with ``timm:`` are reserved for timm's models.

    Examples
    --------
    >>> from torch import nn
    >>> @register_network("tiny-cnn")
    ... class TinyCNN(nn.Module):
    ...     def __init__(self, in_channels=3, num_classes=2):
    ...         super().__init__()
    ...         self.conv = nn.Conv2d(in_channels, 8, 3)
    ...         self.head = nn.Linear(8, num_classes)
    ...     def forward(self, x):
    ...         return self.head(self.conv(x).mean((2, 3)))
    """
    chosen = target if isinstance(target, str) else name
    if chosen is not None and (not isinstance(chosen, str) or chosen.startswith("timm:")):
        raise ParameterError(
            "The 'name' parameter of register_network must be a non-empty string not "
            f"starting with 'timm:'. Got {chosen!r} instead."
        )
    return _register(target, factory, name=name, overwrite=overwrite)


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_networks() -> list[str]:
    """Names :func:`get_network` accepts (timm models, when installed, come as ``timm:*``)."""
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get_network(name: str, *, in_channels: int = 3, num_classes: int = 2, **options) -> nn.Module:
    """Build the network registered as ``name``.

    Parameters
    ----------
    name : str
        A registered name, an entry point of ``clusterlens.nets``, or ``"timm:<model>"``.
    in_channels, num_classes : int
        Bands in (3: g, r, z) and logits out (2: non-lens, lens).
    **options
        Further keyword arguments of the network (JSON-serialisable, since they are saved
        in checkpoints).

    Returns
    -------
    torch.nn.Module
        The model, with ``model.clusterlens_network = {"name", "options"}`` attached.
    """
    if isinstance(name, str) and name.startswith("timm:"):
        try:
            import timm
        except ImportError as exc:
            raise ParameterError(
                f"The network {name!r} needs the 'timm' package: pip install timm."
            ) from exc
        try:
            model = timm.create_model(
                name[5:],
                pretrained=False,
                in_chans=in_channels,
                num_classes=num_classes,
                **options,
            )
        except RuntimeError as exc:  # timm's "Unknown model"
            raise ParameterError(f"timm has no model {name[5:]!r}: {exc}") from exc
    else:
        factory = _REGISTRY.get(name)
        if factory is None and name in (eps := _entry_points()):
            factory = eps[name].load()
        if factory is None:
            raise ParameterError(
                f"The 'name' parameter of get_network must be one of {available_networks()} "
                f"or 'timm:<model>'. Got {name!r} instead."
            )
        _check_options(name, factory, options)
        model = factory(in_channels=in_channels, num_classes=num_classes, **options)
    model.clusterlens_network = {
        "name": name,
        "options": {"in_channels": in_channels, "num_classes": num_classes, **options},
    }
    return model


def _check_options(name: str, factory, options: dict) -> None:
    """Refuse options the network does not take, naming the ones it does (a TypeError from
    deep inside the constructor would otherwise reach the user as a traceback)."""
    import inspect

    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read: let the factory decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    takes = [k for k in params if k not in ("self", "in_channels", "num_classes")]
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise ParameterError(
            f"The network {name!r} takes no option {', '.join(map(repr, unknown))}; its "
            f"options are {takes}."
        )


register_network("resnet18", ResNet18)
register_network("convnext-nano", ConvNeXtNano)
