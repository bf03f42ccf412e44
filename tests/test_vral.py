"""Meta-discriminators: losses against hand computations, order properties, routing, VRAL objective."""

import math
from types import SimpleNamespace

import pytest
import torch

from equilibria.core.parallel import SINGLE
from equilibria.methods.vral import (LipschitzMeta, MetaDiscriminator, VarianceMeta, lipschitz_slopes,
                                     meta_adversary_loss, meta_discriminator_loss, vral_objective)

ONE = SimpleNamespace(parallel=SINGLE)  # the trainer as the components see it: one process


def softplus(t):
    return math.log1p(math.exp(t))


def linear_meta(m, order="ordered"):
    """A meta-discriminator whose logit is sum(values) (hidden ReLU of positives made linear)."""
    meta = MetaDiscriminator(m, hidden=2, order=order).double()
    with torch.no_grad():
        meta.net[0].weight.copy_(torch.stack([torch.ones(m), -torch.ones(m)]))
        meta.net[0].bias.zero_()
        meta.net[2].weight.copy_(torch.tensor([[1.0, -1.0]]))
        meta.net[2].bias.zero_()
    return meta  # relu(s) - relu(-s) = s


def test_meta_losses_hand_computed():
    meta = linear_meta(3)
    outputs = torch.tensor([0.2, -0.1, 0.4], dtype=torch.float64)
    assert meta(outputs).item() == pytest.approx(0.5)
    assert meta_adversary_loss(meta, outputs).item() == pytest.approx(softplus(-0.5))  # -log sigmoid(0.5)
    torch.manual_seed(4)
    loss = meta_discriminator_loss(meta, outputs, mean=2.0, std=0.5, draws=2)
    torch.manual_seed(4)
    draws = (torch.randn(2, 3, dtype=torch.float64) * 0.5 + 2.0).sum(1).tolist()
    expected = sum(softplus(-s) for s in draws) / 2 + softplus(0.5)
    assert loss.item() == pytest.approx(expected)


def test_meta_loss_moves_only_the_meta_discriminator():
    meta = MetaDiscriminator(4)
    outputs = torch.randn(4, requires_grad=True)
    meta_discriminator_loss(meta, outputs, 1.0).backward()
    assert outputs.grad is None and meta.net[0].weight.grad is not None


def test_sorted_form_is_permutation_invariant_and_ordered_form_is_not():
    torch.manual_seed(0)
    values = torch.randn(16)
    permuted = values[torch.randperm(16)]
    sorted_meta = MetaDiscriminator(16, order="sorted")
    assert sorted_meta(values).item() == sorted_meta(permuted).item()
    ordered_meta = MetaDiscriminator(16, order="ordered")
    ordered_meta.load_state_dict(sorted_meta.state_dict())
    assert ordered_meta(values).item() != pytest.approx(ordered_meta(permuted).item(), abs=1e-6)


def test_single_order_judges_each_output_alone_as_the_authors_code():
    meta = MetaDiscriminator(3, hidden=2, order="single").double()
    with torch.no_grad():  # logit(v) = relu(2v) - relu(-2v) + 0.5 = 2v + 0.5
        meta.net[0].weight.copy_(torch.tensor([[2.0], [-2.0]]))
        meta.net[0].bias.zero_()
        meta.net[2].weight.copy_(torch.tensor([[1.0, -1.0]]))
        meta.net[2].bias.fill_(0.5)
    outputs = torch.tensor([0.2, -0.1, 0.4], dtype=torch.float64)
    torch.testing.assert_close(meta(outputs), 2 * outputs + 0.5)
    assert meta_adversary_loss(meta, outputs).item() == pytest.approx(
        sum(softplus(-(2 * v + 0.5)) for v in outputs.tolist()) / 3)
    torch.manual_seed(4)
    loss = meta_discriminator_loss(meta, outputs, mean=2.0, std=0.5, draws=2)
    torch.manual_seed(4)
    gaussian = (torch.randn(2, 3, dtype=torch.float64) * 0.5 + 2.0).flatten().tolist()
    expected = (sum(softplus(-(2 * y + 0.5)) for y in gaussian) / 6
                + sum(softplus(2 * v + 0.5) for v in outputs.tolist()) / 3)
    assert loss.item() == pytest.approx(expected)
    assert meta(outputs[torch.tensor([2, 0, 1])]).tolist() == meta(outputs)[torch.tensor([2, 0, 1])].tolist()


def test_batch_size_must_match():
    with pytest.raises(ValueError, match=r"got shape \(8,\); allowed: \(16,\) or \(k, 16\).*train.batch_size = 16"):
        MetaDiscriminator(16)(torch.randn(8))
    with pytest.raises(ValueError, match="order: got 'random'"):
        MetaDiscriminator(16, order="random")


def test_lipschitz_slopes_hand_computed():
    real = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    fake = torch.tensor([[3.0, 4.0], [1.0, 2.0]])
    slopes = lipschitz_slopes(torch.tensor([1.0, 2.0]), torch.tensor([-1.5, 4.0]), real, fake)
    torch.testing.assert_close(slopes, torch.tensor([2.5 / 5.0, 2.0 / 1.0]))


def test_variance_meta_terms_and_mean_subtraction():
    real_meta, fake_meta = linear_meta(3), linear_meta(3)
    component = VarianceMeta(real_meta, fake_meta, torch.optim.SGD([*real_meta.parameters(), *fake_meta.parameters()],
                                                                    lr=0.0), mu_real=1.0, mu_fake=-1.0,
                             mean_subtraction=True, weight=2.0)
    d_real = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    d_fake = torch.tensor([1.0, 2.0, 6.0], dtype=torch.float64)  # centred: [-2, -1, 3], sum 0
    terms = component.adversary_terms(ONE, None, None, d_real, d_fake)
    assert terms["meta_real"].item() == pytest.approx(2 * softplus(-0.6))
    assert terms["meta_fake"].item() == pytest.approx(2 * softplus(0.0))
    logs = component.update_before_adversary(ONE, None, None, d_real, d_fake)
    assert logs["meta/std_fake"].item() == pytest.approx(d_fake.std().item())


def test_lipschitz_meta_term_reaches_discriminator_outputs():
    meta = MetaDiscriminator(2)
    component = LipschitzMeta(meta, torch.optim.SGD(meta.parameters(), lr=0.1), k=1.0, sigma=0.1)
    real, fake = torch.randn(2, 3), torch.randn(2, 3)
    d_real, d_fake = torch.randn(2, requires_grad=True), torch.randn(2, requires_grad=True)
    component.update_before_adversary(ONE, real, fake, d_real.detach(), d_fake.detach())
    term = component.adversary_terms(ONE, real, fake, d_real, d_fake)["meta_lipschitz"]
    (grad,) = torch.autograd.grad(term, d_real)
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("mu_real, mu_fake", [(1.0, -1.0), (-1.0, 1.0)])
def test_vral_generator_losses(mu_real, mu_fake):
    d_fake = torch.tensor([0.5, -0.5, 2.0])
    ipm = vral_objective(mu_real, mu_fake)
    # Eq. 11 as printed, E_Q D (- E_P D), when mu_f > mu_r; the opposite sign otherwise
    expected = d_fake.mean().item() * (1 if mu_fake > mu_real else -1)
    assert ipm.generator_loss(None, d_fake).item() == pytest.approx(expected)
    lsq = vral_objective(mu_real, mu_fake, least_squares=True)
    assert lsq.generator_loss(None, d_fake).item() == pytest.approx(sum((t - mu_real) ** 2 for t in [0.5, -0.5, 2.0]) / 3)
    assert ipm.adversary_loss(torch.ones(3), d_fake).item() == 0.0
    with pytest.raises(ValueError, match="two different means"):
        vral_objective(1.0, 1.0)
    # the author's mean-subtraction code: the adversary also minimises E_Q D - E_P D
    separated = vral_objective(mu_real, mu_fake, separate_means=True)
    assert separated.adversary_loss(torch.tensor([1.0, 2.0]), d_fake).item() == pytest.approx(2 / 3 - 1.5)
    assert separated.generator_loss(None, d_fake).item() == pytest.approx(expected)


def test_separate_means_needs_mean_subtraction_and_a_vral_objective():
    from equilibria.training.config import ConfigError, load_config

    base = ["vral.enabled=true", "vral.separate_means=true"]
    with pytest.raises(ConfigError, match=r"'vral.separate_means': got true with vral.mean_subtraction=false and "
                                          r"objective=vral; allowed: with vral.mean_subtraction=true"):
        load_config(None, [*base, "objective=vral"])
    with pytest.raises(ConfigError, match=r"objective=wgan; allowed"):
        load_config(None, [*base, "vral.mean_subtraction=true", "objective=wgan"])
    assert load_config(None, [*base, "vral.mean_subtraction=true", "objective=vral_lsq"]).vral.separate_means


def test_centred_gaussian_batches_for_the_mean_subtraction_variant():
    meta = linear_meta(4)  # logit = sum of the batch
    torch.manual_seed(0)
    centred = meta_discriminator_loss(meta, torch.zeros(4, dtype=torch.float64), mean=-1.0, draws=3, centred=True)
    # every centred Gaussian batch sums to 0, so both terms are softplus(0) = log 2
    assert centred.item() == pytest.approx(2 * math.log(2))
    torch.manual_seed(0)
    plain = meta_discriminator_loss(meta, torch.zeros(4, dtype=torch.float64), mean=-1.0, draws=3)
    assert plain.item() != pytest.approx(2 * math.log(2))


def test_variance_meta_terms_read_a_larger_generated_batch_as_batches_of_m():
    """AdvAs's r with train.generator_batch_size = k m: the fake term is the mean over the k batches,
    each centred by its own mean in the mean-subtraction variant (not by the mean of all k m)."""
    d_real = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    d_fake = torch.tensor([1.0, 2.0, 6.0, 0.0, 0.0, 3.0], dtype=torch.float64)  # sums 9 and 3
    for subtract, expected in ((False, (softplus(-9.0) + softplus(-3.0)) / 2), (True, softplus(0.0))):
        real_meta, fake_meta = linear_meta(3), linear_meta(3)
        component = VarianceMeta(real_meta, fake_meta, torch.optim.SGD([*real_meta.parameters()], lr=0.0),
                                 mu_real=1.0, mu_fake=-1.0, mean_subtraction=subtract)
        terms = component.adversary_terms(ONE, None, None, d_real, d_fake)
        assert terms["meta_fake"].item() == pytest.approx(expected)
    # centred by the mean of all six (2), the first half would sum to 3: softplus(-3) and softplus(+3)
    assert softplus(0.0) != pytest.approx((softplus(-3.0) + softplus(3.0)) / 2)


def test_advas_with_vral_trains_on_a_multiple_of_the_batch_and_refuses_the_rest(tmp_path):
    from test_run import metrics

    from equilibria.training.config import ConfigError, load_config
    from equilibria.training.run import train

    base = ["objective=vral", "vral.enabled=true", "advas.enabled=true", "train.batch_size=16", "train.steps=2",
            "generator.width=8", "discriminator.width=8", "log.every=1", "log.progress=false",
            "log.tensorboard=false", "threads=1"]
    run = train(load_config(None, [*base, "train.generator_batch_size=32"]), tmp_path / "run")
    assert all(math.isfinite(record["advas/r"]) for record in metrics(run))
    with pytest.raises(ConfigError, match=r"'train.generator_batch_size': got 24 with advas.enabled=true and "
                                          r"vral.variant=variance; allowed: null, or a multiple of train.batch_size"):
        load_config(None, [*base, "train.generator_batch_size=24"])
    with pytest.raises(ConfigError, match=r"got 32 with advas.enabled=true and vral.variant=lipschitz"):
        load_config(None, [*base[1:], "vral.variant=lipschitz", "train.generator_batch_size=32"])
