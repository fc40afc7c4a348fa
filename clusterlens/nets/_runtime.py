"""The torch runtime of the lens finder, shared by training and scoring (private).

One place for the decisions that make a network run well on a given machine:

* :func:`resolve_device`: ``"auto"``, ``"cpu"``, ``"cuda:1"``... with a clear error when CUDA
  is asked for and missing;
* :func:`scoring_dtype` / :func:`training_dtype` and :func:`autocast`: the mixed-precision
  dtype (bf16, or fp16 on GPUs without bf16) and its autocast block;
* :func:`fold_batch_norm`: each eval-mode batch norm folded into the convolution before it;
* :class:`InferenceNetwork`: a network ready to score (folded, ``channels_last``, its body's
  weights stored once in the autocast dtype, or quantised to int8 by :func:`quantize_int8`),
  with one copy per batch from the caller's float32 NCHW images to the layout and dtype the
  body runs in;
* :func:`forward_parts`: (features, logits) with the body under autocast and the head in
  float32, so scores keep float32 resolution.

Nothing here knows about datasets, catalogs or files.
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import torch

from clusterlens.errors import ParameterError

__all__ = [
    "InferenceNetwork",
    "autocast",
    "fold_batch_norm",
    "forward_parts",
    "quantize_int8",
    "resolve_device",
    "scoring_dtype",
    "training_dtype",
]


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name``: ``"auto"`` is CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(f"Unknown device {name!r}.") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"Device {name!r} was asked for but CUDA is not available.")
    return device


def _half_dtype() -> torch.dtype:
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def scoring_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype of a scoring ``precision`` (None: float32).

    ``"auto"`` is bf16 on CUDA (fp16 where the GPU lacks bf16) and float32 on CPU; ``"int8"``
    runs its quantised body in int8 and has no autocast.
    """
    if precision in ("fp32", "int8") or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return _half_dtype()
    return torch.bfloat16 if precision == "bf16" else torch.float16


def training_dtype(amp: bool | None, device: torch.device) -> torch.dtype | None:
    """Autocast dtype of training (None: float32): ``amp`` None means on for CUDA only; bf16
    on CPU and on GPUs with bf16, else fp16 (which needs loss scaling)."""
    if not (amp if amp is not None else device.type == "cuda"):
        return None
    return torch.bfloat16 if device.type == "cpu" else _half_dtype()


def autocast(device_type: str, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device_type``; a no-op block for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


def forward_parts(model: torch.nn.Module, x: torch.Tensor, *, amp_dtype=None):
    """(features, logits) of ``model`` on the transformed batch ``x``.

    Networks with ``features`` and ``head`` (the built-in ones) run their body under
    autocast ``amp_dtype`` and their head in float32, so the logits keep float32
    resolution; timm models use ``forward_features``/``forward_head``; any other network
    runs whole and its features are ``None``.
    """
    if hasattr(model, "features") and hasattr(model, "head"):
        with autocast(x.device.type, amp_dtype):
            features = model.features(x)
        features = features.float()
        return features, model.head(features).float()
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):  # timm
        with autocast(x.device.type, amp_dtype):
            features = model.forward_head(model.forward_features(x), pre_logits=True)
        features = features.float()
        return features, model.get_classifier()(features).float()
    with autocast(x.device.type, amp_dtype):
        return None, model(x).float()


class _FoldedNetwork(torch.nn.Module):
    """A network's ``features`` replaced (batch norms folded, or quantised) and its original
    ``head``: the same function in eval mode, faster."""

    def __init__(self, features: torch.nn.Module, head: torch.nn.Module):
        super().__init__()
        self.features, self.head = features, head

    def forward(self, x):
        return self.head(self.features(x))


class _FeaturesOf(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.features(x)


def fold_batch_norm(model: torch.nn.Module) -> torch.nn.Module:
    """Fold eval-mode batch norms into their convolutions (torch.fx); the model unchanged
    when it cannot be traced or has no ``features``/``head``."""
    if not (hasattr(model, "features") and hasattr(model, "head")):
        return model
    with warnings.catch_warnings():  # the module imports torch.utils.mkldnn (jit deprecations)
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.fx.experimental.optimization import fuse

    try:
        features = fuse(_FeaturesOf(model), inplace=False)
    except Exception:  # networks that torch.fx cannot trace run unfolded
        return model
    return _FoldedNetwork(features, model.head)


def quantize_int8(model: torch.nn.Module, calibration) -> torch.nn.Module:
    """The network with its body quantised to int8 (static, per-channel weights), its head in
    float32.

    Parameters
    ----------
    model : torch.nn.Module
        An eval-mode network with ``features`` and ``head`` on the CPU.
    calibration : iterable of Tensor
        Transformed (batch, band, y, x) float32 batches: the activation ranges of every layer
        are observed on them, so they must look like the images to be scored.

    Notes
    -----
    torch.ao's FX graph mode on the ``x86`` engine (oneDNN/FBGEMM kernels, VNNI where the CPU
    has it): batch norms are folded and ReLUs fused into the int8 convolutions.
    """
    if not (hasattr(model, "features") and hasattr(model, "head")):
        raise ParameterError(
            "precision='int8' needs a network with 'features' and 'head' (the built-in ones); "
            f"{type(model).__name__} has not both."
        )
    batches = [b for b in calibration]
    if not batches:
        raise ParameterError("precision='int8' needs at least one calibration image.")
    with warnings.catch_warnings():  # torch.ao announces its move to torchao
        warnings.simplefilter("ignore")
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        torch.backends.quantized.engine = "x86"
        try:
            prepared = prepare_fx(
                _FeaturesOf(copy.deepcopy(model).eval()),  # fusion must not touch the original
                get_default_qconfig_mapping("x86"),
                example_inputs=(batches[0][:1],),
            )
        except Exception as exc:  # a network torch.fx cannot trace
            raise ParameterError(
                f"precision='int8': {type(model).__name__} cannot be quantised ({exc})."
            ) from exc
        with torch.inference_mode():
            for batch in batches:
                prepared(batch)
        features = convert_fx(prepared)
    return _FoldedNetwork(features, model.head)


class InferenceNetwork:
    """A network prepared to score batches on one device.

    Parameters
    ----------
    model : torch.nn.Module
        The trained network (left unchanged; a folded or quantised copy is made).
    device : torch.device
        Where it runs.
    amp_dtype : torch dtype or None
        Autocast dtype of the body (None: float32).
    channels_last : bool
        Channels-last layout for the body and its input.
    fold : bool
        Fold the batch norms into the convolutions (exact in eval mode).
    calibration : iterable of Tensor, optional
        Transformed float32 batches: given, the body is quantised to int8 with them
        (:func:`quantize_int8`; CPU only, ``amp_dtype`` must be None).

    Notes
    -----
    When folding succeeded and ``amp_dtype`` is set, the body's parameters are stored in
    ``amp_dtype`` once, instead of autocast casting every weight on every batch, and each
    input batch is converted to the body's layout and dtype in a single copy.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device,
        *,
        amp_dtype=None,
        channels_last: bool = True,
        fold: bool = True,
        calibration=None,
    ):
        self.device, self.amp_dtype, self.channels_last = device, amp_dtype, channels_last
        self.quantized = calibration is not None
        model = model.to(device).eval()
        self.input_dtype = torch.float32
        if self.quantized:
            if device.type != "cpu" or amp_dtype is not None:
                raise ParameterError("precision='int8' runs on the CPU only, without autocast.")
            model = quantize_int8(model, calibration)
        else:
            folded = fold_batch_norm(model) if fold else model
            if folded is not model and amp_dtype is not None:
                folded.features.to(amp_dtype)
                self.input_dtype = amp_dtype
            model = folded
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the body's memory layout and input dtype (one copy at most)."""
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.to(self.device, self.input_dtype, memory_format=layout)

    def forward_parts(self, x: torch.Tensor):
        """(features, logits), float32, of the prepared batch ``x``."""
        return forward_parts(self.model, self.prepare_input(x), amp_dtype=self.amp_dtype)

    def logit_difference(self, x: torch.Tensor) -> torch.Tensor:
        """Lens minus non-lens logit, float32, shape (batch,), of the transformed batch ``x``."""
        _, logits = self.forward_parts(x)
        return logits[:, 1] - logits[:, 0]
