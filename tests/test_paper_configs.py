"""Every config of the papers' CelebA and CIFAR-10 systems trains two steps at a tiny width, on a generated
folder of CelebA's shape or generated CIFAR-10 batches (never the full sizes in the suite)."""

from pathlib import Path

import pytest
from conftest import celeba_folder, cifar_folder

from equilibria.training.config import load_config
from equilibria.training.run import train

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")
                 if "celeba" in p.name or "cifar10" in p.name)


def test_the_papers_celeba_and_cifar10_systems_have_configs():
    assert {p.name for p in CONFIGS} >= {
        "advas-autogan-cifar10-baseline.yaml", "advas-autogan-cifar10-advas.yaml",
        "advas-stylegan2-celeba64-baseline.yaml", "advas-stylegan2-celeba64-advas.yaml",
        "lens-celeba-lsgan-lens.yaml", "lens-celeba-lsgan-nolens.yaml", "lens-cifar10-wgangp-lens.yaml",
        "lens-cifar10-wgangp-nolens.yaml", "vral-cifar10-vral.yaml", "vral-celeba-vral.yaml",
        "vral-celeba-lipschitz.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_trains_two_steps_at_a_tiny_width(path, tmp_path, monkeypatch):
    monkeypatch.setenv("EQUILIBRIA_CACHE", str(tmp_path / "cache"))
    data = celeba_folder(tmp_path / "celeba") if "celeba" in path.name else cifar_folder(tmp_path / "cifar")
    overrides = [f"data.root={data}", "generator.width=4", "discriminator.width=4", "generator.latent_dim=8",
                 "train.steps=2", "train.batch_size=4", "eval.every=0", "log.every=1", "log.progress=false",
                 "log.tensorboard=false", "threads=1"]
    if load_config(path).generator.arch == "stylegan2":
        overrides.append("data.image_size=16")  # any power of 2 will do
    if load_config(path).train.n_adv > 2:
        overrides.append("train.n_adv=2")
    run = train(load_config(path, overrides), tmp_path / "run")
    assert (run / "checkpoints" / "step-00000002.pt").exists()
