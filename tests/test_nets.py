"""Networks, the registry, the input transform and checkpoints."""

import numpy as np
import pytest
import torch
from torch import nn

from clusterlens.errors import ParameterError
from clusterlens.nets import (
    AsinhStretch,
    CheckpointError,
    ResNet18,
    available_networks,
    get_network,
    load_checkpoint,
    register_network,
    save_checkpoint,
    transform_from_dict,
)

# One thread: on a shared 2-core machine a 2-thread OpenMP team stalls whenever one of its
# threads is descheduled (measured: steps 10-100x slower under load).
torch.set_num_threads(1)
SMALL = {"widths": [8, 16, 32, 64]}


def test_resnet18_parameter_count_matches_the_standard_network():
    model = ResNet18()
    assert sum(p.numel() for p in model.parameters()) == 11_177_538
    # 4 stages x 2 blocks x 2 convs + stem + 3 shortcut convs = 20 convolutions
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 20


def test_resnet18_output_shape_and_feature_map_size():
    model = get_network("resnet18").eval()
    x = torch.zeros(2, 3, 223, 223)
    with torch.no_grad():
        stem = model.stem(x)
        assert stem.shape == (2, 64, 56, 56)
        assert model.stages(stem).shape == (2, 512, 7, 7)
        assert model(x).shape == (2, 2)
        assert model.features(x).shape == (2, 512)


@pytest.mark.parametrize("name, options", [("resnet18", SMALL), ("convnext-nano", {})])
def test_gradients_reach_every_parameter(name, options):
    torch.manual_seed(0)
    model = get_network(name, **options)
    # Residual branches start switched off on purpose (zero-initialised last BN scale, tiny
    # layer scale); switch them on so that every weight is on a path to the loss.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("bn2.weight") or pname.endswith("gamma"):
                p.fill_(1.0)
    y = torch.tensor([0, 1, 0, 1])
    nn.functional.cross_entropy(model(torch.randn(4, 3, 64, 64)), y).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_resnet18_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = get_network("resnet18", **SMALL)
    x, y = torch.randn(8, 3, 32, 32), torch.tensor([0, 1] * 4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    assert loss.item() < 0.05
    assert (model(x).argmax(1) == y).all()


def test_convnext_nano_is_a_small_alternative():
    model = get_network("convnext-nano")
    n = sum(p.numel() for p in model.parameters())
    assert 3_000_000 < n < 4_000_000 and model(torch.zeros(1, 3, 223, 223)).shape == (1, 2)


def test_registry_custom_network_and_errors():
    @register_network("test-tiny-cnn", overwrite=True)
    class Tiny(nn.Module):
        def __init__(self, in_channels=3, num_classes=2, width=4):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, width, 3)
            self.head = nn.Linear(width, num_classes)

        def forward(self, x):
            return self.head(self.conv(x).mean((2, 3)))

    assert {"resnet18", "convnext-nano", "test-tiny-cnn"} <= set(available_networks())
    model = get_network("test-tiny-cnn", width=6)
    assert model.clusterlens_network == {
        "name": "test-tiny-cnn",
        "options": {"in_channels": 3, "num_classes": 2, "width": 6},
    }
    with pytest.raises(ParameterError, match="already registered"):
        register_network("resnet18", Tiny)
    with pytest.raises(ParameterError, match="must be one of.*resnet18.*Got 'resnet-19'"):
        get_network("resnet-19")
    try:
        import timm  # noqa: F401
    except ImportError:
        with pytest.raises(ParameterError, match="needs the 'timm' package"):
            get_network("timm:resnet18")


def test_asinh_transform_values_and_round_trip():
    t = AsinhStretch()
    x = torch.tensor([[[[0.0, 0.006]], [[0.011, 1.1]], [[-0.025, 25.0]]]])
    y = t(x)
    expected = np.arcsinh(np.array([[0, 1], [1, 100], [-1, 1000]])) / 3
    np.testing.assert_allclose(y.numpy()[0, :, 0], expected, rtol=1e-6)
    assert transform_from_dict(t.to_dict()) == t
    custom = AsinhStretch(scales=(1.0, 2.0, 3.0), divisor=1.0)
    assert transform_from_dict(custom.to_dict()) == custom
    with pytest.raises(ParameterError, match="Unknown input transform"):
        transform_from_dict({"name": "asinh", "version": 99})
    with pytest.raises(ParameterError, match="3 bands but the images have 4"):
        t(torch.zeros(1, 4, 2, 2))
    with pytest.raises(ParameterError, match="'scales'"):
        AsinhStretch(scales=(1.0, -1.0, 1.0))


def test_checkpoint_round_trip_and_clear_errors(tmp_path):
    torch.manual_seed(1)
    model = get_network("resnet18", **SMALL)
    transform = AsinhStretch(scales=(0.01, 0.02, 0.03))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    path = save_checkpoint(
        tmp_path / "m.pt",
        model,
        transform=transform,
        optimizer=opt,
        epoch=3,
        history=[{"epoch": 3, "val_auc": 0.9}],
    )
    loaded = load_checkpoint(path, network="resnet18")
    assert loaded.epoch == 3 and loaded.transform == transform
    assert loaded.history == [{"epoch": 3, "val_auc": 0.9}]
    assert loaded.state["clusterlens_version"] and loaded.state["optimizer"] is not None
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)
    images = np.random.default_rng(0).normal(scale=0.02, size=(2, 3, 32, 32))
    model.eval()
    with torch.no_grad():
        expected = torch.softmax(model(transform(torch.tensor(images, dtype=torch.float32))), 1)
    np.testing.assert_allclose(loaded.predict(images), expected[:, 1].numpy(), rtol=1e-5)

    with pytest.raises(CheckpointError, match="holds a 'resnet18' network, not 'convnext-nano'"):
        load_checkpoint(path, network="convnext-nano")
    # weights of one architecture under another's name
    state = torch.load(path, weights_only=True)
    state["network"] = {"name": "convnext-nano", "options": {"in_channels": 3, "num_classes": 2}}
    torch.save(state, tmp_path / "swapped.pt")
    with pytest.raises(CheckpointError, match="do not fit the 'convnext-nano' network"):
        load_checkpoint(tmp_path / "swapped.pt")
    data = path.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "truncated.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a clusterlens checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="No checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_networks_from_an_entry_point(monkeypatch):
    from importlib import metadata

    from clusterlens.nets import registry

    point = metadata.EntryPoint(
        name="plugged-resnet", value="clusterlens.nets.resnet:ResNet18", group="clusterlens.nets"
    )
    monkeypatch.setattr(registry, "_entry_points", lambda: {point.name: point})
    assert "plugged-resnet" in available_networks()
    model = get_network("plugged-resnet", widths=[8, 16, 32, 64])
    assert isinstance(model, ResNet18) and model.clusterlens_network["name"] == "plugged-resnet"
