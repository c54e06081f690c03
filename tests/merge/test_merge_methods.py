"""Closed-form checks of every merge formula on tiny tensors (no mergekit needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from merge import MergeError, merge_state_dicts, merge_tensors
from merge.methods import METHODS


def test_registry_has_every_method():
    assert set(METHODS) == {
        "linear",
        "task_arithmetic",
        "ties",
        "dare_ties",
        "dare_linear",
        "slerp",
        "model_stock",
        "arcee_fusion",
        "passthrough",
        "breadcrumbs",
        "breadcrumbs_ties",
        "della",
        "della_linear",
        "sce",
        "karcher",
        "nuslerp",
        "multislerp",
        "nearswap",
    }
    for cls in METHODS.values():  # every module states its formula
        assert "=" in (__import__(cls.__module__, fromlist=["_"]).__doc__ or "")


def test_unknown_method_suggests_the_closest_name():
    with pytest.raises(MergeError, match="did you mean 'della_linear'"):
        merge_tensors("dela_linear", [torch.ones(2), torch.ones(2)], base=0)


def test_linear_is_the_normalized_weighted_average():
    a, b, c = torch.randn(5, 4), torch.randn(5, 4), torch.randn(5, 4)
    weights = [{"weight": 0.5}, {"weight": 0.3}, {"weight": 0.2}]
    merged = merge_tensors("linear", [a, b, c], model_parameters=weights)
    torch.testing.assert_close(merged, 0.5 * a + 0.3 * b + 0.2 * c)
    doubled = [{"weight": 2 * w["weight"]} for w in weights]
    torch.testing.assert_close(merge_tensors("linear", [a, b, c], model_parameters=doubled), merged)
    raw = merge_tensors("linear", [a, b, c], model_parameters=doubled, parameters={"normalize": False})
    torch.testing.assert_close(raw, a + 0.6 * b + 0.4 * c)


def test_linear_refuses_weights_that_sum_to_zero():
    with pytest.raises(MergeError, match="sum to zero"):
        merge_tensors(
            "linear", [torch.ones(3), torch.ones(3)], model_parameters=[{"weight": 1}, {"weight": -1}]
        )


def test_task_arithmetic_adds_lambda_times_weighted_deltas():
    base, a, b = torch.randn(6, 3), torch.randn(6, 3), torch.randn(6, 3)
    merged = merge_tensors(
        "task_arithmetic",
        [base, a, b],
        base=0,
        parameters={"lambda": 0.7},
        model_parameters=[{}, {"weight": 0.4}, {"weight": 1.5}],
    )
    torch.testing.assert_close(merged, base + 0.7 * (0.4 * (a - base) + 1.5 * (b - base)))
    normalized = merge_tensors(
        "task_arithmetic",
        [base, a, b],
        base=0,
        parameters={"normalize": True},
        model_parameters=[{}, {"weight": 0.4}, {"weight": 1.5}],
    )
    torch.testing.assert_close(normalized, base + (0.4 * (a - base) + 1.5 * (b - base)) / 1.9)


def test_ties_trims_elects_sign_and_averages_agreeing_entries_by_hand():
    base = torch.tensor([1.0, 1.0, 1.0, 1.0])
    d1 = torch.tensor([3.0, -1.0, 2.0, 0.5])
    d2 = torch.tensor([-2.0, -4.0, 1.0, 0.1])
    # density 0.5 keeps the 2 largest |d|: d1 -> [3, 0, 2, 0], d2 -> [-2, -4, 0, 0].
    # weights 2 and 1: weighted sum [4, -4, 4, 0] elects signs [+, -, +, +];
    # agreeing: entry 0 only d1 (6 / 2), entry 1 only d2 (-4 / 1), entry 2 d1 (4 / 2), entry 3 nobody.
    params = [{}, {"weight": 2.0, "density": 0.5}, {"weight": 1.0, "density": 0.5}]
    merged = merge_tensors("ties", [base, base + d1, base + d2], base=0, model_parameters=params)
    torch.testing.assert_close(merged, base + torch.tensor([3.0, -4.0, 2.0, 0.0]))
    unnormalized = merge_tensors(
        "ties",
        [base, base + d1, base + d2],
        base=0,
        model_parameters=params,
        parameters={"normalize": False, "lambda": 0.5},
    )
    torch.testing.assert_close(unnormalized, base + 0.5 * torch.tensor([6.0, -4.0, 4.0, 0.0]))


def test_ties_keeps_exactly_density_of_a_large_tensor():
    # 4.2M entries: above the size where the threshold is found by bracketing instead of kthvalue.
    generator = torch.Generator().manual_seed(3)
    base = torch.zeros(2100, 2000)
    other = torch.randn(2100, 2000, generator=generator)
    merged = merge_tensors("ties", [base, other], base=0, model_parameters=[{}, {"density": 0.3}])
    kept = merged != 0
    assert int(kept.sum()) == int(0.3 * other.numel())
    assert other.abs()[kept].min() >= other.abs()[~kept].max()
    torch.testing.assert_close(merged[kept], other[kept])


def test_slerp_endpoints_and_a_known_angle():
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    torch.testing.assert_close(merge_tensors("slerp", [a, b], base=0, parameters={"t": 0.0}), a)
    torch.testing.assert_close(merge_tensors("slerp", [a, b], base=0, parameters={"t": 1.0}), b)
    # 90 degrees apart, t = 1/2: both coefficients are sin(45) / sin(90), applied to the raw vectors.
    half = math.sqrt(0.5)
    torch.testing.assert_close(
        merge_tensors("slerp", [a, b], base=0, parameters={"t": 0.5}), torch.tensor([2 * half, half])
    )
    # 60 degrees, t = 1/3: sin(40) / sin(60) and sin(20) / sin(60).
    c = torch.tensor([0.5, math.sqrt(3) / 2])
    merged = merge_tensors("slerp", [torch.tensor([1.0, 0.0]), c], base=0, parameters={"t": 1 / 3})
    ca, cb = (
        math.sin(math.radians(40)) / math.sin(math.radians(60)),
        math.sin(math.radians(20)) / math.sin(math.radians(60)),
    )
    torch.testing.assert_close(merged, torch.tensor([ca + cb * 0.5, cb * math.sqrt(3) / 2]))


def test_slerp_of_nearly_collinear_tensors_is_linear():
    a = torch.tensor([1.0, 2.0, 3.0])
    merged = merge_tensors("slerp", [a, 2 * a], base=0, parameters={"t": 0.25})
    torch.testing.assert_close(merged, 0.75 * a + 0.25 * 2 * a)


def test_slerp_requires_t():
    with pytest.raises(MergeError, match="parameter t is required"):
        merge_tensors("slerp", [torch.ones(2), torch.zeros(2)], base=0)


def test_model_stock_formula():
    base = torch.tensor([1.0, 1.0])
    # Offsets [1, 0] and [1, 1]: cos = 1 / sqrt(2), N = 2, t = 2 cos / (1 + cos).
    x1, x2 = base + torch.tensor([1.0, 0.0]), base + torch.tensor([1.0, 1.0])
    cos = 1 / math.sqrt(2)
    t = 2 * cos / (1 + cos)
    merged = merge_tensors("model_stock", [base, x1, x2], base=0)
    torch.testing.assert_close(merged, t * (x1 + x2) / 2 + (1 - t) * base)
    # Orthogonal offsets: cos = 0, so t = 0 and the base is kept.
    orthogonal = merge_tensors("model_stock", [base, x1, base + torch.tensor([0.0, 1.0])], base=0)
    torch.testing.assert_close(orthogonal, base)


def test_model_stock_filter_wise_uses_one_t_per_row():
    base = torch.zeros(2, 2)
    x1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    x2 = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # row 0 at 45 degrees, row 1 at 90 degrees
    merged = merge_tensors("model_stock", [base, x1, x2], base=0, parameters={"filter_wise": True})
    cos = 1 / math.sqrt(2)
    t0 = 2 * cos / (1 + cos)
    torch.testing.assert_close(merged, torch.tensor([[t0, t0 / 2], [0.0, 0.0]]))


def test_model_stock_needs_three_inputs():
    with pytest.raises(MergeError, match="at least 3"):
        merge_tensors("model_stock", [torch.ones(2), torch.zeros(2)], base=0)


def _fusion_reference(base: np.ndarray, other: np.ndarray) -> np.ndarray:
    """arcee_fusion written out plainly in float64 numpy, from the formula in its docstring."""

    def softmax(x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    p, q = softmax(other) + 1e-8, softmax(base) + 1e-8
    kl = (p * np.log(p / q)).sum(axis=-1, keepdims=True)
    importance = np.abs(other - base) * kl
    ordered = np.sort(importance.reshape(-1))
    q1, median, q3 = (ordered[int(f * (ordered.size - 1))] for f in (0.25, 0.5, 0.75))
    return np.where(importance >= median + 1.5 * (q3 - q1), other, base)


def test_arcee_fusion_matches_the_formula():
    generator = torch.Generator().manual_seed(5)
    base = torch.randn(40, 16, generator=generator, dtype=torch.float64)
    other = base + 0.05 * torch.randn(40, 16, generator=generator, dtype=torch.float64)
    other[7] += 2.0  # one row that changed a lot
    merged = merge_tensors("arcee_fusion", [base, other], base=0)
    expected = torch.from_numpy(_fusion_reference(base.numpy(), other.numpy()))
    torch.testing.assert_close(merged, expected)
    changed = merged != base
    assert changed[7].all() and 0 < int(changed.sum()) < base.numel()


def test_arcee_fusion_keeps_entries_at_the_threshold():
    # A single row: kl is one number, so importance ranks like |d|. |d| = [0, 1, 2, 3, 10]:
    # q1 = 1, median = 2, q3 = 3, threshold = 2 + 1.5 * 2 = 5, so only the 10 is taken.
    base = torch.zeros(5, dtype=torch.float64)
    other = torch.tensor([0.0, 1.0, 2.0, 3.0, 10.0], dtype=torch.float64)
    merged = merge_tensors("arcee_fusion", [base, other], base=0)
    torch.testing.assert_close(merged, torch.tensor([0.0, 0.0, 0.0, 0.0, 10.0], dtype=torch.float64))
    # |d| = [0, 0, 0, 0, 0]: the threshold is 0 and every entry (of equal importance 0) is kept.
    same = merge_tensors("arcee_fusion", [base, base.clone()], base=0)
    torch.testing.assert_close(same, base)


def test_arcee_fusion_samples_large_tensors_with_the_seed():
    generator = torch.Generator().manual_seed(9)
    base = torch.randn(1100, 1000, generator=generator)
    other = base + 0.01 * torch.randn(1100, 1000, generator=generator)
    first = merge_tensors("arcee_fusion", [base, other], base=0, seed=1)
    again = merge_tensors("arcee_fusion", [base, other], base=0, seed=1)
    assert torch.equal(first, again)
    exact = torch.from_numpy(_fusion_reference(base.double().numpy(), other.double().numpy())).float()
    agreement = ((first != base) == (exact != base)).float().mean()
    assert agreement > 0.995  # a 1M-entry sample puts the threshold where the full sort does


def test_arcee_fusion_takes_exactly_two_models():
    with pytest.raises(MergeError, match="exactly 2"):
        merge_tensors("arcee_fusion", [torch.ones(3), torch.zeros(3), torch.ones(3)], base=0)


@pytest.mark.parametrize("method", ["dare_linear", "dare_ties"])
def test_dare_keeps_density_and_rescales_to_the_l1_norm(method):
    generator = torch.Generator().manual_seed(11)
    base = torch.zeros(1000, 1000)
    delta = torch.randn(1000, 1000, generator=generator)
    merged = merge_tensors(method, [base, delta], base=0, model_parameters=[{}, {"density": 0.3}], seed=4)
    kept = merged != 0
    assert abs(kept.float().mean().item() - 0.3) < 0.005
    # Kept entries are scaled by one factor, |d|_1 / |kept d|_1, close to the paper's 1 / density.
    factor = (merged[kept] / delta[kept]).unique()
    torch.testing.assert_close(factor.max(), factor.min())
    torch.testing.assert_close(merged.abs().sum(), delta.abs().sum())
    assert abs(factor[0].item() - 1 / 0.3) < 0.05
    assert torch.equal(
        merged, merge_tensors(method, [base, delta], base=0, model_parameters=[{}, {"density": 0.3}], seed=4)
    )
    assert not torch.equal(
        merged, merge_tensors(method, [base, delta], base=0, model_parameters=[{}, {"density": 0.3}], seed=5)
    )


def test_dare_linear_union_of_masks_matches_independent_drops():
    generator = torch.Generator().manual_seed(12)
    base = torch.zeros(500, 400)
    deltas = [torch.randn(500, 400, generator=generator) for _ in range(3)]
    densities = [0.5, 0.7, 0.3]
    merged = merge_tensors(
        "dare_linear", [base, *deltas], base=0, model_parameters=[{}, *({"density": d} for d in densities)]
    )
    expected_nonzero = 1 - (0.5 * 0.3 * 0.7)  # an entry is zero only if every model dropped it
    assert abs((merged != 0).float().mean().item() - expected_nonzero) < 0.01


def test_dare_ties_without_rescale_keeps_raw_values():
    base = torch.zeros(300, 300)
    delta = torch.randn(300, 300, generator=torch.Generator().manual_seed(2))
    merged = merge_tensors(
        "dare_ties",
        [base, delta],
        base=0,
        parameters={"rescale": False},
        model_parameters=[{}, {"density": 0.5}],
    )
    kept = merged != 0
    torch.testing.assert_close(merged[kept], delta[kept])


def test_state_dict_api_resolves_gradients_per_layer():
    names = [
        "model.embed_tokens.weight",
        "model.layers.0.mlp.weight",
        "model.layers.1.mlp.weight",
        "model.layers.2.mlp.weight",
    ]
    # Collinear inputs, so slerp is a lerp and each output reads back its t as (x - 1) / 2.
    a = {name: torch.ones(3) for name in names}
    b = {name: 3 * torch.ones(3) for name in names}
    merged = merge_state_dicts("slerp", [a, b], base=0, parameters={"t": [0.0, 1.0]})
    # Layers 0..2 sit at 0, 1/2 and 1 along the gradient; tensors outside the layers at 0.
    assert [(float(merged[name][0]) - 1) / 2 for name in names] == [0.0, 0.0, 0.5, 1.0]
    filtered = merge_state_dicts(
        "slerp", [a, b], base=0, parameters={"t": [{"filter": "layers.1", "value": 0.25}, {"value": 0.75}]}
    )
    assert [(float(filtered[name][0]) - 1) / 2 for name in names] == [0.75, 0.75, 0.25, 0.75]


def test_float64_inputs_are_merged_in_float64():
    a = torch.tensor([1.0, 1e-12], dtype=torch.float64)
    b = torch.tensor([1.0, 3e-12], dtype=torch.float64)
    merged = merge_tensors("linear", [a, b])
    assert merged.dtype == torch.float64
    assert merged[1].item() == pytest.approx(2e-12, rel=1e-12)


@pytest.mark.parametrize(
    "method, count, base",
    [
        ("linear", 3, None),
        ("task_arithmetic", 3, 0),
        ("ties", 3, 0),
        ("dare_ties", 3, 0),
        ("slerp", 2, 0),
        ("model_stock", 3, 0),
        ("arcee_fusion", 2, 0),
    ],
)
def test_bfloat16_inputs_merge_exactly_like_their_float32_values(method, count, base):
    # Half-precision inputs are widened inside the ops (or first): the float32 result, rounded once.
    generator = torch.Generator().manual_seed(21)
    start = torch.randn(300, 64, generator=generator)
    tensors = [(start + 0.05 * torch.randn(300, 64, generator=generator)).bfloat16() for _ in range(count)]
    options = {
        "base": base,
        "parameters": {"t": 0.3},
        "seed": 2,
        "model_parameters": [{"weight": 0.5 + i, "density": 0.6} for i in range(count)],
    }
    merged = merge_tensors(method, tensors, **options)
    assert merged.dtype == torch.bfloat16
    assert torch.equal(merged, merge_tensors(method, [t.float() for t in tensors], **options).bfloat16())


def test_breadcrumbs_cuts_both_tails_by_hand():
    base = torch.zeros(10)
    delta = torch.arange(1.0, 11.0)  # |d| = 1..10
    # density 0.5 keeps 5, gamma 0.2 drops the 2 largest first: kept |d| = 4..8.
    merged = merge_tensors(
        "breadcrumbs", [base, delta], base=0, model_parameters=[{}, {"density": 0.5, "gamma": 0.2}]
    )
    torch.testing.assert_close(merged, torch.where((delta >= 4) & (delta <= 8), delta, 0.0))
    # density 0.9 with gamma 0.2 cannot drop 2 outliers and keep 9: only the largest goes.
    merged = merge_tensors(
        "breadcrumbs", [base, delta], base=0, model_parameters=[{}, {"density": 0.9, "gamma": 0.2}]
    )
    torch.testing.assert_close(merged, torch.where(delta <= 9, delta, 0.0))


def test_breadcrumbs_ties_elects_signs_after_the_cut():
    base = torch.zeros(4)
    a = torch.tensor([5.0, 1.0, -2.0, 3.0])
    b = torch.tensor([-1.0, 2.0, -4.0, 9.0])
    params = [{}, {"density": 0.75, "gamma": 0.25}, {"density": 0.75, "gamma": 0.25}]
    # a keeps |d| 1..3 -> [0, 1, -2, 3]; b keeps 1..4 -> [-1, 2, -4, 0]; sums [-1, 3, -6, 3] elect [-, +, -, +].
    merged = merge_tensors("breadcrumbs_ties", [base, a, b], base=0, model_parameters=params)
    torch.testing.assert_close(merged, torch.tensor([-1.0, 3.0, -6.0, 3.0]))


def test_della_keeps_large_changes_more_often_and_checks_epsilon():
    generator = torch.Generator().manual_seed(4)
    base = torch.zeros(400, 1000)
    delta = torch.randn(400, 1000, generator=generator)
    merged = merge_tensors(
        "della_linear",
        [base, delta],
        base=0,
        parameters={"rescale": False},
        model_parameters=[{}, {"density": 0.5, "epsilon": 0.3}],
    )
    kept = merged != 0
    order = delta.abs().argsort(dim=-1)
    smallest = kept.gather(-1, order[:, :100]).float().mean().item()  # p from 0.2 to 0.26
    largest = kept.gather(-1, order[:, -100:]).float().mean().item()  # p from 0.74 to 0.8
    assert abs(kept.float().mean().item() - 0.5) < 0.005
    assert abs(smallest - 0.23) < 0.01 and abs(largest - 0.77) < 0.01
    with pytest.raises(MergeError, match="epsilon"):
        merge_tensors(
            "della", [base, delta], base=0, model_parameters=[{}, {"density": 0.9, "epsilon": 0.15}]
        )


def test_sce_selects_high_variance_entries_and_weights_by_energy():
    base = torch.zeros(4)
    a = torch.tensor([1.0, 2.0, 0.0, -3.0])
    b = torch.tensor([1.0, -2.0, 1.0, 3.0])
    # Variances [0, 4, 0.25, 9]: 3 non-zero, select_topk 2/3 keeps 2 -> entries 1 and 3.
    merged = merge_tensors("sce", [base, a, b], base=0, parameters={"select_topk": 2 / 3})
    # Selected: a -> [0, 2, 0, -3], b -> [0, -2, 0, 3], equal energy, so weights 1/2 each. The sums are
    # all 0, which elects +: at entry 1 only a's 2 agrees, at entry 3 only b's 3.
    torch.testing.assert_close(merged, torch.tensor([0.0, 2.0, 0.0, 3.0]))


def test_nearswap_swaps_close_entries_and_moves_far_ones_part_way():
    a = torch.tensor([0.0, 0.0, 0.0])
    b = torch.tensor([0.05, 0.2, -0.4])
    merged = merge_tensors("nearswap", [a, b], base=0, parameters={"t": 0.1})
    torch.testing.assert_close(merged, torch.tensor([0.05, 0.1, -0.1]))


def test_karcher_of_two_orthogonal_vectors_is_their_bisector():
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 4.0])
    merged = merge_tensors("karcher", [a, b])
    # The mean direction is at 45 degrees; the length is the mean norm, 3.
    torch.testing.assert_close(merged, 3 * torch.tensor([1.0, 1.0]) / math.sqrt(2))


def test_multislerp_of_two_is_slerp_at_the_weight_and_one_model_is_itself():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    merged = merge_tensors("multislerp", [a, b], model_parameters=[{"weight": 0.5}, {"weight": 0.5}])
    torch.testing.assert_close(merged, torch.tensor([1.0, 1.0]) / math.sqrt(2))
    torch.testing.assert_close(merge_tensors("multislerp", [a]), a)


def test_nuslerp_interpolates_task_vectors_by_weight():
    base = torch.tensor([1.0, 1.0])
    a, b = base + torch.tensor([1.0, 0.0]), base + torch.tensor([0.0, 1.0])
    merged = merge_tensors(
        "nuslerp", [base, a, b], base=0, model_parameters=[{}, {"weight": 2.0}, {"weight": 1.0}]
    )
    # t = 1/3 of the way along the quarter circle between the two task vectors.
    expected = base + torch.tensor([math.cos(math.pi / 6), math.sin(math.pi / 6)])
    torch.testing.assert_close(merged, expected)
    with pytest.raises(MergeError, match="weight is required"):
        merge_tensors("nuslerp", [base, a, b], base=0)


def test_passthrough_copies_or_scales_one_model():
    x = torch.randn(3, 4)
    torch.testing.assert_close(merge_tensors("passthrough", [x]), x)
    torch.testing.assert_close(merge_tensors("passthrough", [x], model_parameters=[{"scale": 0.5}]), 0.5 * x)
    with pytest.raises(MergeError, match="takes exactly 1"):
        merge_tensors("passthrough", [x, x])


def test_bracketing_finds_exact_order_statistics_among_heavily_repeated_values():
    # bfloat16 task vectors take a few dozen distinct magnitudes, each repeated millions of times
    # in an embedding matrix; the bracket must still find the exact k-th largest without falling
    # back to sorting the whole tensor.
    from merge.methods._select import _bracket, magnitude_of
    from merge.methods.base import TensorJob

    generator = torch.Generator().manual_seed(7)
    base = (0.02 * torch.randn(2200, 2000, generator=generator)).bfloat16()
    other = (base.float() + 0.002 * torch.randn(2200, 2000, generator=generator)).bfloat16()
    job = TensorJob("embed", [base, other], base=0)
    magnitude = (other.float() - base.float()).abs().reshape(-1)
    n = magnitude.numel()
    counts = magnitude.unique(return_counts=True)[1]
    assert int(counts.max()) > 0.03 * n  # one value alone overflows a band of 3% of the entries
    requests = {k: (magnitude_of(1, 0), k) for k in (1, int(0.01 * n) + 1, n // 2, int(0.9 * n), n)}
    found = _bracket(job, requests)
    for k in requests:
        assert found[k] == float(torch.kthvalue(magnitude, n - k + 1).values), k
