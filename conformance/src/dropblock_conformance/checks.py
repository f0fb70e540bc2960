"""One check per behaviour of the spec, run against any adapter.

Each check takes the adapter, the behaviour (for its tolerance) and one case, and raises
``AssertionError`` with the numbers when the implementation does not conform.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from dropblock_core import gamma, linear_ramp, valid_corners

from . import oracle
from .adapter import Output
from .exported import judge_onnx
from .golden import golden_input, load_case
from .invariants import assert_close_ulp, assert_valid_sample
from .spec import Behaviour, Case, golden
from .stats import assert_binomial_counts, assert_binomial_histogram, assert_within_z

Check = Callable[[Any, Behaviour, Case], None]
EXCEPTIONS = {"ValueError": ValueError, "TypeError": TypeError}


def _input(case: Case) -> np.ndarray:
    return golden_input(tuple(case["shape"]), case["seed"])


def _geometry(case: Case) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Spatial sizes and clamped block of a case."""
    spatial = oracle.spatial_shape(case["shape"], case["data_format"])
    return spatial, oracle.clamped_block(spatial, case["block_size"])


def _maps(case: Case, out: np.ndarray) -> np.ndarray:
    """Dropped indicator per independent map, ``(M, *S)``."""
    dropped = oracle.to_channels_first(out == 0, case["data_format"])
    if not case["per_channel"]:
        dropped = dropped[:, :1]
    return dropped.reshape((-1, *dropped.shape[2:]))


def _ones_sample(adapter: Any, case: Case) -> np.ndarray:
    x = np.ones(case["shape"])
    out = adapter.call_functional(x, seed=case["seed"], dtype=case["dtype"], **case.params)
    assert np.isfinite(out.values).all(), "non-finite values in the output"
    return out.values


def _ones_samples(adapter: Any, case: Case) -> list[tuple[str, np.ndarray]]:
    """The functional form's and a fresh layer's training output on an all-ones input.

    The statistical checks judge both: the layer has its own state (rate in force, seed
    stream) and could draw at another rate than the function it wraps.
    """
    x = np.ones(case["shape"])
    layer = adapter.make_layer(rank=case.rank, seed=case["seed"], **case.params)
    # A first call on maps of another size: what the layer derives from a shape (gamma's
    # factor, the sampler's size) must not stick from one call to the next.
    adapter.call_layer(layer, np.ones(_other_spatial_size(case)), dtype=case["dtype"], training=True)
    out = adapter.call_layer(layer, x, dtype=case["dtype"], training=True)
    assert np.isfinite(out.values).all(), "layer: non-finite values in the output"
    return [("functional", _ones_sample(adapter, case)), ("layer", out.values)]


def _other_spatial_size(case: Case) -> tuple[int, ...]:
    """The case's shape with every spatial size 3 larger (the batch and channels unchanged)."""
    shape = list(case["shape"])
    axes = range(2, len(shape)) if case["data_format"] == "channels_first" else range(1, len(shape) - 1)
    for axis in axes:
        shape[axis] += 3
    return tuple(shape)


def _assert_identity(x: np.ndarray, out: Any, dtype: str, what: str) -> None:
    """``out`` is ``x`` bit for bit: the same dtype, signed zeros and NaNs where ``x`` has them."""
    assert out.dtype == dtype, f"{what}: dtype changed: {dtype} in, {out.dtype} out"
    same = (out.values == x) & (np.signbit(out.values) == np.signbit(x))
    same |= np.isnan(out.values) & np.isnan(x)
    assert same.all(), f"{what}: output differs from the input at {int((~same).sum())} elements"


def _with_special_values(x: np.ndarray) -> np.ndarray:
    """``x`` with -0.0, +0.0, NaN, +inf and -inf in its first elements (all exact in every float dtype)."""
    special = np.array([-0.0, 0.0, np.nan, np.inf, -np.inf])
    flat = x.copy().reshape(-1)
    flat[: min(flat.size, special.size)] = special[: flat.size]
    return flat.reshape(x.shape)


# --- property checks --------------------------------------------------------------------


def inference_identity(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    x, dtype = _with_special_values(_input(case)), case["dtype"]
    layer = adapter.make_layer(rank=case.rank, seed=case["seed"], **case.params)
    _assert_identity(x, adapter.call_layer(layer, x, dtype=dtype, training=False), dtype, "layer")
    out = adapter.call_functional(x, seed=case["seed"], dtype=dtype, training=False, **case.params)
    _assert_identity(x, out, dtype, "functional")
    calls = adapter.inference_calls(layer, x, dtype=dtype)
    missing = [how for how in behaviour.required_calls.get(adapter.name, ()) if how not in calls]
    assert not missing, f"the adapter's inference_calls() lacks {missing} (reported: {sorted(calls)})"
    for how, out in calls.items():
        _assert_identity(x, out, dtype, f"layer, {how}")


def rate_zero_identity(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    x, dtype = _input(case), case["dtype"]
    layer = adapter.make_layer(rank=case.rank, seed=case["seed"], **case.params)
    _assert_identity(x, adapter.call_layer(layer, x, dtype=dtype, training=True), dtype, "layer")
    out = adapter.call_functional(x, seed=case["seed"], dtype=dtype, **case.params)
    _assert_identity(x, out, dtype, "functional")


def rate_one_zeros(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    x, dtype = _input(case), case["dtype"]
    layer = adapter.make_layer(rank=case.rank, seed=case["seed"], **case.params)
    for what, out in (
        ("layer", adapter.call_layer(layer, x, dtype=dtype, training=True)),
        ("functional", adapter.call_functional(x, seed=case["seed"], dtype=dtype, **case.params)),
    ):
        assert out.dtype == dtype, f"{what}: dtype changed: {dtype} in, {out.dtype} out"
        assert np.isfinite(out.values).all(), f"{what}: non-finite values"
        assert (out.values == 0).all(), f"{what}: {int((out.values != 0).sum())} elements kept at rate 1"


def sampled_property(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    """A sampled training-mode output is a legal DropBlock output (layer and functional)."""
    x, dtype = _input(case), case["dtype"]
    max_ulp = behaviour.tolerance.get("max_ulp", 2)
    out = adapter.call_functional(x, seed=case["seed"], dtype=dtype, **case.params)
    assert_valid_sample(x, out, case.params, dtype, max_ulp)
    layer = adapter.make_layer(rank=case.rank, seed=case["seed"], **case.params)
    assert_valid_sample(x, adapter.call_layer(layer, x, dtype=dtype, training=True), case.params, dtype, max_ulp)
    if "mean_tolerance" in case.values:
        mean = float(_ones_sample(adapter, case).mean())
        assert abs(mean - 1.0) <= case["mean_tolerance"], f"mean of an all-ones input became {mean}"


def shapes(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    if case.check == "error":
        call_error(adapter, behaviour, case)
        return
    if math.prod(case["shape"]) == 0:
        x, dtype = np.zeros(case["shape"]), case["dtype"]
        layer = adapter.make_layer(rank=case.rank, seed=case["seed"], **case.params)
        for what, out in (
            ("layer", adapter.call_layer(layer, x, dtype=dtype, training=True)),
            ("functional", adapter.call_functional(x, seed=case["seed"], dtype=dtype, **case.params)),
        ):
            assert out.values.shape == x.shape, f"{what}: empty input of shape {x.shape} gave shape {out.values.shape}"
            assert out.dtype == dtype, f"{what}: dtype changed: {dtype} in, {out.dtype} out"
        return
    sampled_property(adapter, behaviour, case)


def determinism(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    x, dtype, seed = _input(case), case["dtype"], case["seed"]
    first = adapter.call_functional(x, seed=seed, dtype=dtype, **case.params).values
    again = adapter.call_functional(x, seed=seed, dtype=dtype, **case.params).values
    other = adapter.call_functional(x, seed=seed + 1, dtype=dtype, **case.params).values
    assert np.array_equal(first, again), "functional: the same seed gave different outputs"
    assert not np.array_equal(first, other), "functional: different seeds gave the same output"
    layer_a = adapter.make_layer(rank=case.rank, seed=seed, **case.params)
    out_a = adapter.call_layer(layer_a, x, dtype=dtype, training=True).values
    layer_b = adapter.make_layer(rank=case.rank, seed=seed, **case.params)
    out_b = adapter.call_layer(layer_b, x, dtype=dtype, training=True).values
    assert np.array_equal(out_a, out_b), "layers made with the same seed gave different first outputs"
    second = adapter.call_layer(layer_a, x, dtype=dtype, training=True).values
    assert not np.array_equal(out_a, second), "a layer's successive calls gave the same output"


def gradient(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    x, dtype = _input(case), case["dtype"]
    cotangent = golden_input(tuple(case["shape"]), case["seed"] + 500)
    out, grad = adapter.gradient(x, cotangent, seed=case["seed"], dtype=dtype, **case.params)
    if case["rate"] == 1:
        assert (out.values == 0).all(), "rate 1: the output must be all zeros"
        assert (grad == 0).all(), "rate 1: the gradient must be all zeros"
    else:
        assert_valid_sample(x, out, case.params, dtype)
    dropped = out.values == 0
    assert (grad[dropped] == 0).all(), "non-zero gradient where the output was dropped"
    kept = ~dropped
    expected = cotangent[kept] * (out.values[kept] / x[kept])
    assert_close_ulp(grad[kept], expected, dtype, behaviour.tolerance.get("max_ulp", 2), "gradient != g * keep * s")


# --- error checks -------------------------------------------------------------------------


def _assert_names(message: str, pattern: str, what: str) -> None:
    assert re.search(pattern, message), f"the message {message!r} does not name {what}"


def construction_error(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    """Bad parameters raise at construction, naming the parameter as the public API spells it (and the range)."""
    kwargs = {k: case.values[k] for k in ("rate", "block_size", "data_format", "per_channel", "scale")}
    if "raises" not in case.values:
        adapter.make_layer(rank=case.rank, seed=case["seed"], **kwargs)
        return
    with pytest.raises(EXCEPTIONS[case["raises"]]) as info:
        adapter.make_layer(rank=case.rank, seed=case["seed"], **kwargs)
    parameter = "rate" if behaviour.id == "rate-validation" else "block_size"
    name = adapter.parameter_names.get(parameter, parameter)
    _assert_names(str(info.value), rf"(?<![\w.]){re.escape(name)}(?!\w)", f"the parameter {name!r}")
    if parameter == "rate":
        _assert_names(str(info.value), re.escape("[0, 1]"), "the range [0, 1]")


def call_error(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    """A wrong rank (layer) or a non-float dtype (layer and functional form) raises, with a message that says why.

    In every mode: training, inference, and a layer at rate 0 (which returns early).
    """
    x, dtype, error = _input(case), case["dtype"], EXCEPTIONS[case["raises"]]
    layer = adapter.make_layer(rank=case.rank, seed=case["seed"], **case.params)
    idle = adapter.make_layer(rank=case.rank, seed=case["seed"], **{**case.params, "rate": 0.0})
    with pytest.raises(error) as info:
        adapter.call_layer(layer, x, dtype=dtype, training=True)
    with pytest.raises(error):
        adapter.call_layer(layer, x, dtype=dtype, training=False)
    with pytest.raises(error):
        adapter.call_layer(idle, x, dtype=dtype, training=True)
    if case["raises"] == "ValueError":
        expected = case.rank + 2
        assert str(expected) not in "".join(map(str, x.shape)), "the case's shape must not spell the expected rank"
        _assert_names(str(info.value), rf"\b{expected}(?:D\b|-dim)", f"the expected rank ({expected}D)")
        named = {int(n) for n in re.findall(r"\b(\d)(?:D\b|-dim)", str(info.value))}
        assert named <= {expected, x.ndim}, f"the message {str(info.value)!r} names ranks other than {expected}"
        return
    for training in (True, False):
        with pytest.raises(error):
            adapter.call_functional(x, seed=case["seed"], dtype=dtype, training=training, **case.params)


# --- exact checks ---------------------------------------------------------------------------


def golden_or_sampled(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    """Golden cases check stage 2 exactly; the others check sampled outputs."""
    if case.get("golden"):
        golden_case(adapter, behaviour, case)
    else:
        sampled_property(adapter, behaviour, case)


def dtype_behaviour(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    if case.check == "error":
        call_error(adapter, behaviour, case)
    else:
        sampled_property(adapter, behaviour, case)


def golden_case(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    entry = golden()["cases"][case.id]
    x, seeds, expected = load_case(entry)
    out = adapter.apply_seeds(
        x,
        seeds,
        dtype=entry["dtype"],
        block_size=entry["block_size"],
        data_format=entry["data_format"],
        scale=entry["scale"],
    )
    assert out.dtype == entry["dtype"], f"dtype changed: {entry['dtype']} in, {out.dtype} out"
    zeros, expected_zeros = out.values == 0, expected == 0
    assert np.array_equal(zeros, expected_zeros), (
        f"zero pattern differs from the golden one at {int((zeros != expected_zeros).sum())} positions"
    )
    kept = ~expected_zeros
    max_ulp = behaviour.tolerance["max_ulp"]
    assert_close_ulp(out.values[kept], expected[kept], entry["dtype"], max_ulp, "kept values")


# --- statistical checks ------------------------------------------------------------------------


def block_clamp(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    spatial, block = _geometry(case)
    assert block == spatial, "block-clamp cases must cover the whole map"
    for source, out in _ones_samples(adapter, case):
        maps = _maps(case, out).reshape(-1, math.prod(spatial))
        whole = maps.all(axis=1) | ~maps.any(axis=1)
        assert whole.all(), f"{source}: {int((~whole).sum())} maps were dropped partly, not whole"
        m, rate = maps.shape[0], case["rate"]
        dropped = float(maps.all(axis=1).sum())
        assert_within_z(dropped, m * rate, m * rate * (1 - rate), behaviour.tolerance["z"], f"{source}: dropped maps")


def valid_region_seeds(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    spatial, block = _geometry(case)
    seeds = adapter.sample_seeds(tuple(case["shape"]), seed=case["seed"], **case.params)
    seeds_cf = oracle.to_channels_first(np.asarray(seeds, dtype=bool), case["data_format"])
    n, channels = case["shape"][0], case["shape"][1 if case["data_format"] == "channels_first" else -1]
    grid = (n, channels if case["per_channel"] else 1, *valid_corners(spatial, block))
    assert seeds_cf.shape == grid, f"seed grid has shape {seeds_cf.shape}, expected {grid}"
    g = gamma(case["rate"], spatial, block)
    total = seeds_cf.size
    assert_within_z(float(seeds_cf.sum()), total * g, total * g * (1 - g), behaviour.tolerance["z"], "seed count")
    per_map = seeds_cf.reshape(seeds_cf.shape[0] * seeds_cf.shape[1], -1).sum(axis=1)
    family = behaviour.tolerance["family_alpha"]
    assert_binomial_histogram(per_map, seeds_cf[0, 0].size, g, family / 2, "seeds per map")
    alpha = family / 2 / len(spatial)
    for axis in range(2, seeds_cf.ndim):
        other = tuple(a for a in range(seeds_cf.ndim) if a != axis)
        counts = seeds_cf.sum(axis=other)
        assert_binomial_counts(counts, total / seeds_cf.shape[axis], np.full(counts.shape, g), alpha, f"axis {axis}")


def _drop_fraction_moments(rate: float, spatial: Any, block: Any) -> tuple[float, float]:
    """Mean and variance of one map's dropped fraction (closed forms, once per case: the variance is O(P**2))."""
    return oracle.expected_drop_fraction(rate, spatial, block), oracle.drop_fraction_variance(rate, spatial, block)


def _assert_drop_fraction(maps: np.ndarray, moments: tuple[float, float], z: float, source: str) -> None:
    """The mean dropped fraction of the independent ``maps`` (``(M, *S)``) is within ``z`` sd of the closed form."""
    mean, map_variance = moments
    assert_within_z(float(maps.mean()), mean, map_variance / maps.shape[0], z, f"{source}: mean dropped fraction")


def expected_drop_fraction(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    spatial, block = _geometry(case)
    rate = case["rate"]
    dropped_p = 1.0 - oracle.keep_probability(rate, spatial, block)
    moments = _drop_fraction_moments(rate, spatial, block)
    samples = _ones_samples(adapter, case)
    z, alpha = behaviour.tolerance["z"], behaviour.tolerance["family_alpha"] / len(samples)
    for source, out in samples:
        maps = _maps(case, out)
        _assert_drop_fraction(maps, moments, z, source)
        assert_binomial_counts(maps.sum(axis=0), maps.shape[0], dropped_p, alpha, f"{source}: per-position drops")


def per_channel(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    if case.check == "property":
        sampled_property(adapter, behaviour, case)
        return
    spatial, block = _geometry(case)
    z = behaviour.tolerance["z"]
    moments = oracle.co_drop_moments(case["rate"], spatial, block)  # O(P**2): once per case
    for source, out in _ones_samples(adapter, case):
        dropped = oracle.to_channels_first(out == 0, case["data_format"])
        n_samples, channels = dropped.shape[:2]
        assert n_samples % 2 == 0, "independence cases need an even batch"
        assert channels % 2 == 0, "independence cases need an even channel count"
        # Disjoint pairs of maps, each pair independent of the others: neighbouring channels,
        # channels half the channel count apart, and samples half the batch apart.
        pairings = {
            "neighbouring channels": (dropped[:, 0::2], dropped[:, 1::2]),
            "channels C/2 apart": (dropped[:, : channels // 2], dropped[:, channels // 2 :]),
            "samples N/2 apart": (dropped[: n_samples // 2], dropped[n_samples // 2 :]),
        }
        for what, (first, second) in pairings.items():
            _assert_independent_pairs(first, second, spatial, moments, z, f"{source}, {what}")
        if case.get("distinct_masks"):
            _assert_no_two_masks_alike(dropped, case["rate"], spatial, block, behaviour, source)


def _assert_independent_pairs(
    first: np.ndarray, second: np.ndarray, spatial: Any, moments: tuple[float, float], z: float, what: str
) -> None:
    """Maps paired element for element (``(..., *spatial)`` each) drop together as often as independent maps do.

    ``moments``: :func:`oracle.co_drop_moments` of one pair of maps.
    """
    pairs = first.size // math.prod(spatial)
    mean, variance = moments
    co_dropped = float((first & second).sum())
    assert_within_z(co_dropped, pairs * mean, pairs * variance, z, f"positions dropped in both ({what})")


def _assert_no_two_masks_alike(
    dropped: np.ndarray, rate: float, spatial: Any, block: Any, behaviour: Behaviour, what: str
) -> None:
    """No two of the (N, C) maps have the same mask, where independent ones almost surely do not.

    Catches masks shared between pairs of maps that no fixed pairing looks at (a stream
    index off by a stride, say).
    """
    maps = dropped.reshape(-1, math.prod(spatial))
    count = maps.shape[0]
    bound = count * (count - 1) / 2 * oracle.mask_collision_bound(rate, spatial, block)
    alpha = behaviour.tolerance["family_alpha"]
    assert bound <= alpha, f"the case is too small: {bound:.3g} identical pairs expected, above {alpha}"
    distinct = np.unique(np.packbits(maps, axis=1), axis=0).shape[0]
    assert distinct == count, f"{what}: {count - distinct} of {count} masks repeat another map's mask"


# --- framework checks -----------------------------------------------------------------------------


def _capability(adapter: Any, method: str) -> Callable[..., Any]:
    if not hasattr(adapter, method):
        raise AssertionError(f"the {adapter.name} adapter does not implement {method}()")
    return getattr(adapter, method)


def compile_behaviour(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    run = _capability(adapter, "compile_check")
    x, dtype = _input(case), case["dtype"]
    params = {k: v for k, v in case.params.items() if k != "rate"}
    result = run(x, case["rates"], seed=case["seed"], **params)
    assert len(result.outputs) == len(case["rates"]), "one output per rate expected"
    for rate, out in zip(case["rates"], result.outputs, strict=True):
        if rate == 0.0:
            _assert_identity(x, out, dtype, "compiled, rate 0")
        elif rate == 1.0:
            assert (out.values == 0).all(), "compiled, rate 1: elements kept"
        else:
            assert_valid_sample(x, out, {**params, "rate": rate}, dtype)
            moments = _drop_fraction_moments(rate, *_geometry(case))
            _assert_drop_fraction(_maps(case, out.values), moments, behaviour.tolerance["z"], f"compiled, rate {rate}")
    assert result.compilations == 1, f"compiled {result.compilations} times for {len(case['rates'])} rates"


def schedule(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    run = _capability(adapter, "schedule_check")
    target, total, start = case["target"], case["total_steps"], case["start"]
    result = run(
        target=target,
        total_steps=total,
        start=start,
        probe_steps=case["probe_steps"],
        restore_step=case["restore_step"],
    )
    for step, rate in zip(case["probe_steps"], result.rates, strict=True):
        expected = linear_ramp(step, total, target, start)
        assert abs(rate - expected) <= 1e-6, f"after {step} steps the rate is {rate}, expected {expected}"
    restored = linear_ramp(case["restore_step"], total, target, start)
    assert abs(result.restored_rate - restored) <= 1e-6, f"restored rate {result.restored_rate}, expected {restored}"
    continued = linear_ramp(case["restore_step"] + 1, total, target, start)
    assert abs(result.continued_rate - continued) <= 1e-6, f"rate after restore + 1 step {result.continued_rate}"


def unchecked_rate_in_force(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    """Unvalidated rates in force: NaN and values <= 0 are the identity, values >= ``rate`` act as ``rate``."""
    run = _capability(adapter, "rate_in_force_run")
    x, dtype, rate, values = _input(case), case["dtype"], case["rate"], case["rates_in_force"]
    params = {k: v for k, v in case.params.items() if k != "rate"}
    outputs = run(x, rate=rate, rates_in_force=values, seed=case["seed"], dtype=dtype, **params)
    assert len(outputs) == len(values), "one output per rate in force expected"
    assert rate in values, "spec case error: `rates_in_force` must include the configured rate"
    at_rate = outputs[values.index(rate)]
    assert (at_rate.values == 0).any(), f"nothing dropped at the configured rate {rate}: the case tests nothing"
    for value, out in zip(values, outputs, strict=True):
        assert not np.isnan(out.values).any(), f"rate in force {value}: NaN in the output"
        if math.isnan(value) or value <= 0.0:
            _assert_identity(x, out, dtype, f"rate in force {value}")
        else:
            assert value >= rate, "the spec's values are NaN, <= 0 or >= the configured rate"
            assert out.dtype == at_rate.dtype, f"rate in force {value}: dtype {out.dtype}, not {at_rate.dtype}"
            same = np.array_equal(out.values, at_rate.values)
            assert same, f"rate in force {value} (configured {rate}) did not act as {rate}"


#: The exporters and runtime the ONNX extras install; only their absence skips ``onnx-inference``.
ONNX_TOOLS = ("onnx", "onnxruntime", "onnxscript", "tf2onnx", "jax2onnx")


def onnx_inference(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    """Skipped, naming the extra, without the ONNX tools (the matrix counts a skip as not green)."""
    export = _capability(adapter, "onnx_export")
    try:
        judge_onnx(export(rank=case["rank"]))
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] not in ONNX_TOOLS:
            raise
        extra = f"dropblock-{adapter.name}[onnx]"
        pytest.skip(f"needs the ONNX tools ({error.name} is not installed): pip install '{extra}'")


def data_parallel(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    """Replicas draw different masks, and each scale counts what the spec decided for the framework."""
    params = {k: case[k] for k in ("rate", "block_size", "scale", "per_channel")}
    run = _capability(adapter, "data_parallel_run")(**params)
    failed = {name: outcome for name, outcome in run.checks.items() if outcome is not True}
    assert run.checks, "the adapter reported no engine sub-checks (a training step under the engine)"
    assert not failed, f"failed engine sub-checks: {failed}"
    replicas = len(run.outputs)
    assert replicas >= 2, f"{replicas} replica outputs: the engine must run two replicas or more"
    assert len(run.inputs) == replicas, f"{replicas} outputs for {len(run.inputs)} inputs"
    assert case["per_channel"], "data-parallel cases judge independent per-channel maps"
    zeros = [oracle.to_channels_first(out == 0, run.data_format) for out in run.outputs]
    for a, b in itertools.combinations(range(replicas), 2):
        assert not np.array_equal(zeros[a], zeros[b]), f"replicas {a} and {b} drew the same mask"
    spatial = zeros[0].shape[2:]
    block = oracle.clamped_block(spatial, case["block_size"])
    z = behaviour.tolerance["z"]
    maps = np.concatenate([d.reshape(-1, *spatial) for d in zeros])  # per-channel masks: every map
    _assert_drop_fraction(maps, _drop_fraction_moments(case["rate"], spatial, block), z, "the replicas")
    # Replicas 0 and 1, 2 and 3...: map for map, independent masks (not shared for some samples).
    firsts = np.stack([zeros[r] for r in range(0, replicas - 1, 2)])
    seconds = np.stack([zeros[r + 1] for r in range(0, replicas - 1, 2)])
    moments = oracle.co_drop_moments(case["rate"], spatial, block)
    _assert_independent_pairs(firsts, seconds, spatial, moments, z, "pairs of replicas")
    counted_over = case["scale_over"].get(adapter.name)
    assert counted_over, f"the spec decides no cross-replica scale for {adapter.name}"
    sample = {**params, "data_format": run.data_format}
    if counted_over == "replica":
        pairs = enumerate(zip(run.inputs, run.outputs, strict=True))
        judged = [(f"replica {r}, scaled by its own batch", x, out) for r, (x, out) in pairs]
    else:
        judged = [
            (
                "the replicas together, scaled by the global batch",
                np.concatenate(run.inputs),
                np.concatenate(run.outputs),
            )
        ]
    for what, x, out in judged:
        try:
            assert_valid_sample(x, Output(out, "float32"), sample, "float32")
        except AssertionError as error:
            raise AssertionError(f"{what}: {error}") from error


CHECKS: dict[str, Check] = {
    "inference-identity": inference_identity,
    "rate-zero-identity": rate_zero_identity,
    "rate-one-zeros": rate_one_zeros,
    "rate-validation": construction_error,
    "block-size-validation": construction_error,
    "block-clamp": block_clamp,
    "valid-region-seeds": valid_region_seeds,
    "block-geometry": golden_or_sampled,
    "expected-drop-fraction": expected_drop_fraction,
    "per-channel": per_channel,
    "scale": golden_or_sampled,
    "dtype": dtype_behaviour,
    "shapes": shapes,
    "determinism": determinism,
    "gradient": gradient,
    "compile": compile_behaviour,
    "schedule": schedule,
    "unchecked-rate-in-force": unchecked_rate_in_force,
    "onnx-inference": onnx_inference,
    "data-parallel": data_parallel,
}


def run_case(adapter: Any, behaviour: Behaviour, case: Case) -> None:
    """Run one case through its behaviour's check."""
    CHECKS[behaviour.id](adapter, behaviour, case)
