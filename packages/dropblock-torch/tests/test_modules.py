"""The modules: configuration, state, serialisation, tracing and exporting."""

from __future__ import annotations

import copy
import importlib.util
import io
import pickle

import pytest
import torch
from conftest import generator
from torch import nn

from dropblock_torch import DropBlock1d, DropBlock2d, DropBlock3d, functional
from dropblock_torch.functional import drop_block2d


def test_repr_and_defaults() -> None:
    m = DropBlock3d()
    assert repr(m) == "DropBlock3d(p=0.1, block_size=(7, 7, 7), per_channel=True, scale='batch', inplace=False)"
    assert repr(DropBlock1d(0.2, 3, scale="none")).startswith("DropBlock1d(p=0.2, block_size=(3,)")


@pytest.mark.parametrize(
    "kwargs",
    [{"p": 2.0}, {"p": "0.1"}, {"block_size": -1}, {"block_size": (3,)}, {"scale": "x"}, {"inplace": 1}],
)
def test_arguments_are_validated_at_construction(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        DropBlock2d(**kwargs)


def test_module_matches_the_functional_and_eval_is_identity(device: torch.device) -> None:
    m = DropBlock2d(p=0.2, block_size=5).to(device)
    x = torch.randn(2, 4, 16, 16, device=device)
    y = m(x, generator=generator(device, 3))
    assert torch.equal(y, drop_block2d(x, 0.2, 5, generator=generator(device, 3)))
    assert m.eval()(x) is x


@pytest.mark.parametrize("training", [True, False])
def test_wrong_rank_names_the_module(training: bool) -> None:
    with pytest.raises(ValueError, match=r"^DropBlock2d expects a 4D input"):
        DropBlock2d().train(training)(torch.ones(2, 3, 4))


def test_p_setter_and_rate_in_force() -> None:
    m = DropBlock2d(p=0.2)
    m.set_current_p(0.05)
    assert m.p == 0.2
    assert float(m.p_current) == pytest.approx(0.05)
    with pytest.raises(ValueError, match=r"`p`: expected a rate in force of at most p=0.2, got 0.3"):
        m.set_current_p(0.3)
    m.set_current_p(float(torch.linspace(0, 0.2, 5)[-1]))  # 0.2 through float32 is above 0.2: p itself
    assert m._p_now == 0.2
    m.p = 0.3
    assert float(m.p_current) == pytest.approx(0.3)
    m.set_current_p(0.0)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(m(x), x), "rate in force 0 is a bit-exact identity"


@pytest.mark.parametrize("shape", [(4, 8, 20, 20), (2, 3, 6, 6)])  # sparse and dense sampling
@pytest.mark.parametrize("rate", [0.05, 0.13, 0.3])
def test_eager_cpu_rate_as_a_float_samples_like_the_tensor_rate(
    monkeypatch: pytest.MonkeyPatch, shape: tuple, rate: float
) -> None:
    # On the CPU in eager mode the module reads its rate in force as a Python float;
    # elsewhere (accelerators, torch.compile) it stays a tensor. Both draw the same seeds.
    m = DropBlock2d(p=0.3, block_size=3)
    m.set_current_p(rate)
    x = torch.randn(shape)
    as_float = m(x, generator=generator("cpu", 5))
    monkeypatch.setattr(functional, "eager_cpu", lambda device: False)
    as_tensor = m(x, generator=generator("cpu", 5))
    assert bool((as_float == 0).any()), "nothing was dropped: the case tests nothing"
    assert torch.equal(as_float, as_tensor)


@pytest.mark.parametrize("eager_cpu", [True, False])  # the rate read as a float, or kept as a tensor
def test_a_rate_in_force_out_of_range_is_clipped_and_nan_counts_as_zero(
    monkeypatch: pytest.MonkeyPatch, eager_cpu: bool
) -> None:
    # p_current written in place (torch.func.functional_call, a hand-edited state) skips set_current_p.
    if not eager_cpu:
        monkeypatch.setattr(functional, "eager_cpu", lambda device: False)
    m = DropBlock2d(p=0.3, block_size=3)
    x = torch.randn(8, 16, 16, 16)
    for nothing in (float("nan"), -0.5, -float("inf")):
        m.p_current.fill_(nothing)
        assert torch.equal(m(x, generator=generator("cpu", 5)), x), nothing
    m.p_current.fill_(0.3)
    at_max = m(x, generator=generator("cpu", 5))
    for above in (1.5, float("inf")):
        m.p_current.fill_(above)
        assert torch.equal(m(x, generator=generator("cpu", 5)), at_max), above


@pytest.mark.parametrize(
    ("name", "value"),
    [("block_size", 0), ("block_size", (3, 3, 3)), ("scale", "Batch"), ("inplace", "no"), ("per_channel", 1)],
)
def test_settings_are_validated_when_set_after_construction(name: str, value: object) -> None:
    m = DropBlock2d(p=0.1, block_size=3)
    with pytest.raises(ValueError, match=f"`{name}`"):
        setattr(m, name, value)
    m.block_size = 5
    assert m.block_size == (5, 5)
    m.scale, m.inplace, m.per_channel = "sample", True, False
    assert "block_size=(5, 5), per_channel=False, scale='sample', inplace=True" in repr(m)


def test_to_empty_after_meta_init_keeps_the_rate_in_force() -> None:
    # The buffer is not in checkpoints, so loading one after to_empty() would not restore it.
    with torch.device("meta"):
        model = nn.Sequential(nn.Conv2d(3, 4, 3), DropBlock2d(p=0.3, block_size=3))
    model[1].set_current_p(0.2)
    model.to_empty(device="cpu")
    assert float(model[1].p_current) == pytest.approx(0.2)
    on_cpu = DropBlock2d(p=0.3, block_size=3)
    on_cpu.set_current_p(0.1)
    on_cpu.to_empty(device="cpu")  # new, uninitialised memory, refilled with the rate
    assert float(on_cpu.p_current) == pytest.approx(0.1)
    on_cpu.share_memory()  # what the conversion made of the buffer is kept
    assert on_cpu.p_current.is_shared()
    assert float(on_cpu.p_current) == pytest.approx(0.1)


def test_dtype_casts_do_not_round_the_rate() -> None:
    m = nn.Sequential(nn.Conv2d(2, 2, 1), DropBlock2d(p=0.1)).half()
    assert m[1].p_current.dtype == torch.float32
    assert float(m[1].p_current) == pytest.approx(0.1, rel=1e-7)
    assert m[0].weight.dtype == torch.float16


def test_sequential_pickle_deepcopy_and_state_dict() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), DropBlock2d(p=0.2, block_size=3), nn.ReLU())
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert isinstance(clone[1], DropBlock2d)
        assert (clone[1].p, clone[1].block_size) == (0.2, (3, 3))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = nn.Sequential(nn.Conv2d(3, 4, 3), DropBlock2d(p=0.2, block_size=3), nn.ReLU())
    fresh.load_state_dict(torch.load(buffer, weights_only=True))  # strict: the layer adds no keys
    x = torch.randn(2, 3, 10, 10)
    assert torch.equal(fresh.eval()(x), model.eval()(x))


def test_fx_symbolic_trace() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), DropBlock2d(p=0.2, block_size=3))
    eval_graph = torch.fx.symbolic_trace(model.eval())
    assert not any("drop_block" in str(node.target) for node in eval_graph.graph.nodes)
    train_graph = torch.fx.symbolic_trace(model.train())
    assert any(getattr(node.target, "__name__", "") == "drop_block" for node in train_graph.graph.nodes)
    x = torch.randn(2, 3, 12, 12)
    torch.manual_seed(0)
    expected = model(x)
    torch.manual_seed(0)
    assert torch.equal(train_graph(x), expected)


def test_torch_export_in_eval_mode_leaves_no_trace() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), DropBlock2d(p=0.2, block_size=3)).eval()
    x = torch.randn(2, 3, 12, 12)
    program = torch.export.export(model, (x,))
    targets = [str(node.target) for node in program.graph.nodes if node.op == "call_function"]
    assert targets == ["aten.conv2d.default"], targets
    assert torch.equal(program.module()(x), model(x))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast(dtype: torch.dtype) -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), DropBlock2d(p=0.2, block_size=3), nn.Conv2d(8, 2, 1))
    x = torch.randn(2, 3, 16, 16)
    with torch.autocast("cpu", dtype=dtype):
        inner = model[1](model[0](x))
        out = model(x)
    assert inner.dtype == dtype
    out.float().sum().backward()
    assert model[0].weight.grad is not None
    assert torch.isfinite(model[0].weight.grad).all()


def test_channels_last_model() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), DropBlock2d(p=0.2, block_size=3)).to(memory_format=torch.channels_last)
    y = model(torch.randn(2, 3, 16, 16).contiguous(memory_format=torch.channels_last))
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_jit_trace_and_onnx_export_in_training_mode_raise_our_error(tmp_path) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), DropBlock2d(p=0.2, block_size=3))
    x = torch.randn(2, 3, 16, 16)
    with pytest.raises(RuntimeError, match=r"torch.jit.trace in training mode.*call model.eval\(\)"):
        torch.jit.trace(model, (x,))
    if importlib.util.find_spec("onnx") is not None:  # the TorchScript-based exporter, asked to keep training mode
        training = torch.onnx.TrainingMode.TRAINING
        with pytest.raises(RuntimeError, match=r"exported to ONNX in training mode: call model.eval\(\)"):
            torch.onnx.export(model, (x,), str(tmp_path / "m.onnx"), dynamo=False, training=training)
    traced = torch.jit.trace(model.eval(), (x,))  # eval mode: the identity, as documented
    assert torch.equal(traced(x), model(x))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # TorchScript itself is deprecated
def test_jit_script_names_the_alternatives() -> None:
    # TorchScript used to fail inside its compiler: "Unknown type annotation: 'torch.Tensor'".
    model = nn.Sequential(nn.Conv2d(3, 4, 3), DropBlock2d(p=0.2, block_size=3)).eval()
    with pytest.raises(RuntimeError, match=r"DropBlock2d does not support torch.jit.script.*torch.compile"):
        torch.jit.script(model)
