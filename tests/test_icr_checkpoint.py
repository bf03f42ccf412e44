"""The ICR checkpoint experiment: discriminator alone versus jointly from a checkpoint (Figure 4)."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from test_trainer import batches, flat, sgd_step, sgd_trainer

from equilibria.analysis.icr_checkpoint import train_from_checkpoint


def probe_sets():
    g = torch.Generator().manual_seed(5)
    return torch.randn(6, 2, generator=g), torch.randn(5, 2, generator=g)


def test_discriminator_alone_matches_a_hand_written_loop_and_leaves_the_generator():
    trainer = sgd_trainer(update="simultaneous", lr=0.1)
    trainer.train_step()  # a checkpoint that is not the initialisation
    state = copy.deepcopy(trainer.state_dict())
    start_g, start_d = copy.deepcopy(trainer.generator), copy.deepcopy(trainer.discriminator)
    real_probe, fake_probe = probe_sets()
    rows = train_from_checkpoint(trainer, state, steps=4, every=2, real=real_probe, fake=fake_probe,
                                 freeze_generator=True, seed=3)

    # The reference: the same batches (the sampler restored from the checkpoint) and noise, D alone.
    reference_batches = batches()
    reference_batches.load_state_dict(state["batches"])
    d = copy.deepcopy(start_d)
    torch.manual_seed(3)
    for _ in range(4):
        real = reference_batches.next()
        fake = start_g(torch.randn(4, 3)).detach()
        loss = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
        sgd_step(d, loss, 0.1)

    assert torch.equal(flat(trainer.generator), flat(start_g))
    torch.testing.assert_close(flat(trainer.discriminator), flat(d))
    assert [r["step"] for r in rows] == [0, 2, 4]
    assert rows[0]["d_real"] == rows[0]["d_fake"] == rows[0]["weights"] == 0.0
    with torch.no_grad():
        assert rows[-1]["d_real"] == pytest.approx(math.sqrt(((d(real_probe) - start_d(real_probe)) ** 2).sum()))
        assert rows[-1]["d_fake"] == pytest.approx(math.sqrt(((d(fake_probe) - start_d(fake_probe)) ** 2).sum()))
        assert rows[-1]["weights"] == pytest.approx((flat(d) - flat(start_d)).norm().item())
        assert rows[0]["loss"] == pytest.approx((F.softplus(-start_d(real_probe)).mean()
                                                 + F.softplus(start_d(fake_probe)).mean()).item())
    assert trainer.g_optimizer.param_groups[0]["lr"] == 0.1  # restored


def test_jointly_moves_both_players_from_the_same_start():
    trainer = sgd_trainer(update="simultaneous", lr=0.1)
    state = copy.deepcopy(trainer.state_dict())
    start_g = flat(trainer.generator)
    real, fake = probe_sets()
    alone = train_from_checkpoint(trainer, state, steps=3, every=1, real=real, fake=fake, freeze_generator=True)
    joint = train_from_checkpoint(trainer, state, steps=3, every=1, real=real, fake=fake, freeze_generator=False)
    assert not torch.equal(flat(trainer.generator), start_g)
    assert alone[0]["loss"] == joint[0]["loss"]
    assert alone[1]["d_real"] == pytest.approx(joint[1]["d_real"])  # the first step's D update is the same
    assert alone[2]["d_fake"] != pytest.approx(joint[2]["d_fake"])  # then the moved generator shows


def test_bad_arguments():
    trainer = sgd_trainer(update="simultaneous")
    real, fake = probe_sets()
    with pytest.raises(ValueError, match="steps"):
        train_from_checkpoint(trainer, trainer.state_dict(), steps=0, every=1, real=real, fake=fake,
                              freeze_generator=True)
    trainer.g_optimizer = None
    with pytest.raises(ValueError, match="joint optimizer"):
        train_from_checkpoint(trainer, trainer.state_dict(), steps=1, every=1, real=real, fake=fake,
                              freeze_generator=True)
