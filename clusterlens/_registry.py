"""One way to register things by name (private): mass profiles and networks.

``register_profile`` and ``register_network`` are both built on :func:`registrar`, so they
take the same forms::

    @register_x                       # under the object's own name
    @register_x("name")               # under "name"
    register_x(obj)                   # a call, under the object's name
    register_x("name", obj)           # a call, under "name"
    register_x(obj, name="name")      # the keyword form

and refuse, with the same message, a name that is taken by another object unless
``overwrite=True``.
"""

from __future__ import annotations

from collections.abc import Callable

from clusterlens.errors import ParameterError


def registrar(
    registry: Callable[[], dict], what: str, check: Callable[[object], None], public_name: str
):
    """A ``register_*`` function for ``registry`` (name -> object).

    Parameters
    ----------
    registry : callable
        Returns the dict where the names live (looked up at each call, so that the module's
        dict may be replaced, as tests do).
    what : str
        What is registered, for messages ("profile", "network").
    check : callable
        ``check(obj)`` raises :class:`~clusterlens.errors.ParameterError` for an object that
        may not be registered.
    public_name : str
        The public function's name, for messages.
    """

    def register(target=None, obj=None, *, name: str | None = None, overwrite: bool = False):
        if isinstance(target, str):
            if name is not None and name != target:
                raise ParameterError(
                    f"{public_name} got two names, {target!r} and name={name!r}; give one."
                )
            name, target = target, obj
        elif obj is not None:
            raise ParameterError(
                f"{public_name}(name, obj) takes the name first; got {target!r}, {obj!r}."
            )
        if name is not None and (not isinstance(name, str) or not name):
            raise ParameterError(
                f"The 'name' parameter of {public_name} must be a non-empty string. "
                f"Got {name!r} instead."
            )

        def decorate(item):
            check(item)
            key = name or getattr(item, "__name__", None)
            if not key:
                raise ParameterError(f"{public_name} needs a name for {item!r}.")
            names = registry()
            taken = names.get(key)
            if taken is not None and taken is not item and not overwrite:
                owner = (
                    f"{getattr(taken, '__module__', '?')}.{getattr(taken, '__qualname__', taken)}"
                )
                raise ParameterError(
                    f"The 'name' parameter of {public_name} must be unused: a {what} named "
                    f"{key!r} is already registered ({owner}). Pick another name or pass "
                    "overwrite=True."
                )
            names[key] = item
            return item

        return decorate if target is None else decorate(target)

    return register
