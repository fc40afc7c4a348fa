import numpy as np
import pytest

from clusterlens import ParameterError
from clusterlens._validation import as_coordinates, check_array, check_int, check_scalar


def test_check_scalar_message_names_parameter_owner_range_and_value():
    with pytest.raises(ParameterError, match=r"'q' parameter of SIE .* range \(0, 1\]. Got 1.3"):
        check_scalar(1.3, "q", "SIE", low=0, high=1, low_inclusive=False)
    with pytest.raises(ParameterError, match="Got 'a' of type str"):
        check_scalar("a", "q", "SIE")
    with pytest.raises(ParameterError, match="Got nan"):
        check_scalar(float("nan"), "q", "SIE")
    assert check_scalar(np.float32(0.5), "q", "SIE", low=0, high=1) == 0.5


@pytest.mark.parametrize("value", [np.nan, -1.0])
def test_check_array_zero_dimensional_bad_value(value):
    with pytest.raises(ParameterError, match="'m' parameter of f must be a finite value"):
        check_array(value, "m", "f", low=0)


def test_check_array_names_first_bad_element():
    with pytest.raises(ParameterError, match=r"Got -2.0 at index 1 \(2 bad value"):
        check_array([1.0, -2.0, np.inf], "m", "f", low=0)
    with pytest.raises(ParameterError, match="2-dimensional"):
        check_array([1.0], "m", "f", ndim=2)


def test_as_coordinates_broadcasts_and_rejects_mismatch():
    x, y, shape = as_coordinates(np.zeros((2, 3)), 1.0, "P")
    assert shape == (2, 3) and x.shape == (6,) and np.all(y == 1.0)
    with pytest.raises(ParameterError, match="same"):
        as_coordinates(np.zeros(3), np.zeros(4), "P")


def test_check_int_accepts_python_and_numpy_integers_and_returns_python_ints():
    value = check_int(np.int64(3), "k", "f", low=1)
    assert value == 3 and type(value) is int
    assert check_int(5, "k", "f", low=0, high=5) == 5
    assert check_int(None, "k", "f", allow_none=True) is None
    assert check_int(-7, "k", "f") == -7  # no bounds


@pytest.mark.parametrize(
    "value, kwargs, message",
    [
        (0, {"low": 1}, r"'k' parameter of f must be an integer >= 1. Got 0 instead"),
        (6, {"low": 0, "high": 5}, r"must be an integer in \[0, 5\]. Got 6 instead"),
        (9, {"high": 8}, r"must be an integer <= 8. Got 9"),
        (True, {}, "must be an integer. Got True of type bool"),
        (np.bool_(False), {}, "of type bool"),
        (3.0, {"low": 1}, "Got 3.0 of type float"),
        ("3", {}, "Got '3' of type str"),
        (None, {"low": 1}, "Got None of type NoneType"),
        (0, {"low": 1, "allow_none": True}, "must be an integer >= 1 or None. Got 0"),
    ],
)
def test_check_int_message_names_parameter_owner_expectation_and_value(value, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        check_int(value, "k", "f", **kwargs)


def test_configs_take_numpy_integers_and_store_python_ints():
    """check_int's value is what the frozen configs keep, so they go into JSON as before."""
    import json

    pytest.importorskip("torch")
    from clusterlens.demo import DemoConfig
    from clusterlens.nets import TrainingConfig
    from clusterlens.nets.scoring import ScoringConfig

    training = TrainingConfig(epochs=np.int64(3), seed=np.int32(7))
    assert type(training.epochs) is int and type(training.seed) is int
    json.dumps(training.to_dict())
    assert type(ScoringConfig(batch_size=np.int64(8)).batch_size) is int
    demo = DemoConfig.quick(n_clusters=np.int64(12), k=np.int64(3))
    assert type(demo.n_clusters) is int and type(demo.k) is int
    json.dumps(demo.fingerprint())
    with pytest.raises(ParameterError, match="'epochs' parameter of TrainingConfig"):
        TrainingConfig(epochs=2.0)
