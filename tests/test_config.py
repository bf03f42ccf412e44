"""Config parsing: types, ranges, unknown keys and overrides give errors that name key, value and what
is allowed; constraints between keys are checked before training; docs/CONFIG.md is the schema's."""

import re
from pathlib import Path

import pytest

from equilibria.training.config import (ConfigError, config_reference, load_config, parse_config, set_key,
                                        to_dict)

ROOT = Path(__file__).parents[1]


def test_defaults_are_the_digits_demo_and_round_trip():
    config = load_config()
    assert config.data.name == "digits" and config.generator.arch == "dcgan8"
    assert parse_config(to_dict(config)) == config


@pytest.mark.parametrize(
    "data, message",
    [
        ({"trian": {}}, r"unknown config key 'trian' \(did you mean 'train'\?\)"),
        ({"train": {"batch_sise": 3}}, r"unknown config key 'train.batch_sise' \(did you mean 'train.batch_size'\?\)"),
        ({"train": {"batch_size": 0}}, r"'train.batch_size': got 0; allowed: an integer >= 1"),
        ({"train": {"batch_size": 3.5}}, r"'train.batch_size': got 3.5; allowed: an integer >= 1"),
        ({"train": {"batch_size": True}}, r"'train.batch_size': got True"),
        ({"train": {"ema": 1.0}}, r"'train.ema': got 1.0; allowed: a number >= 0.0 and < 1.0"),
        ({"optim": {"generator": {"lr": 0}}}, r"'optim.generator.lr': got 0; allowed: a number > 0.0"),
        ({"optim": {"generator": {"betas": [0.5]}}}, r"'optim.generator.betas': got \[0.5\]; allowed: a list of 2"),
        ({"optim": {"generator": {"betas": [2.0, -1.0]}}},
         r"'optim.generator.betas\[0\]': got 2.0; allowed: a number >= 0.0 and < 1.0"),
        ({"objective": "vanilla"}, r"'objective': got 'vanilla'; allowed: one of minimax, nonsaturating"),
        ({"data": {"name": "imagenet"}}, r"'data.name': got 'imagenet'; allowed: one of digits"),
        ({"data": {"name": "mnsit"}}, r"'data.name': got 'mnsit'; allowed: one of .* \(did you mean 'mnist'\?\)"),
        ({"log": {"tensorboard": "yes"}}, r"'log.tensorboard': got 'yes'; allowed: true or false"),
        ({"data": 3}, r"'data': got 3; allowed: a mapping"),
        ({"optim": {"generator": {"lr": float("inf")}}}, r"'optim.generator.lr': got inf; allowed: a number > 0.0"),
        ({"optim": {"generator": {"lr": float("nan")}}}, r"'optim.generator.lr': got nan; allowed: a number > 0.0"),
        ({"train": {"ema": ".nan"}}, r"'train.ema': got '.nan'; allowed: a number"),
        ({"advas": {"enabled": "on"}}, r"'advas.enabled': got 'on'; allowed: true or false"),
    ],
)
def test_bad_values_are_reported_with_key_value_and_allowed(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_numbers_in_exponent_notation_are_numbers():
    """YAML 1.1 reads 1e-3 as a string; a researcher writes learning rates that way."""
    config = load_config(None, ["optim.generator.lr=1e-3", "optim.adversary.lr=2E-4"])
    assert config.optim.generator.lr == 1e-3 and config.optim.adversary.lr == 2e-4


def test_exponent_notation_in_a_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  generator: {lr: 1e-3}\nlens: {switch_off_tol: 1e-7}\n")
    config = load_config(path)
    assert config.optim.generator.lr == 1e-3 and config.lens.switch_off_tol == 1e-7


def test_infinities_from_yaml_are_refused():
    with pytest.raises(ConfigError, match=r"'optim.adversary.lr': got inf"):
        load_config(None, ["optim.adversary.lr=.inf"])
    with pytest.raises(ConfigError, match=r"'penalties.gradient_penalty': got nan"):
        load_config(None, ["penalties.gradient_penalty=.nan"])


def test_integers_are_accepted_for_floats_and_tuples_converted():
    config = parse_config({"optim": {"adversary": {"lr": 1, "betas": [0, 0.9]}}})
    assert config.optim.adversary.lr == 1.0 and isinstance(config.optim.adversary.lr, float)
    assert config.optim.adversary.betas == (0.0, 0.9)


def test_set_parses_yaml_values_and_creates_sections():
    data = {}
    for assignment in ["train.steps=10", "optim.generator.betas=[0.0, 0.9]", "data.root=null", "objective=wgan"]:
        set_key(data, assignment)
    assert data == {"train": {"steps": 10}, "optim": {"generator": {"betas": [0.0, 0.9]}}, "data": {"root": None},
                    "objective": "wgan"}
    with pytest.raises(ConfigError, match="expected key=value"):
        set_key(data, "train.steps")
    with pytest.raises(ConfigError, match="'objective' is not a section"):
        set_key(data, "objective.name=x")


def test_yaml_file_with_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("objective: wgan\ntrain:\n  n_adv: 5\npenalties:\n  gradient_penalty: 10\n")
    config = load_config(path, ["train.n_adv=2"])
    assert (config.objective, config.train.n_adv, config.penalties.gradient_penalty) == ("wgan", 2, 10.0)
    path.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="is a directory; allowed: a YAML file"):
        load_config(tmp_path)


@pytest.mark.parametrize("text, shown", [("[]\n", r"\[\]"), ("false\n", "False"), ("3\n", "3")])
def test_a_file_that_is_not_a_mapping_is_an_error(tmp_path, text, shown):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"config file .*: got {shown}; allowed: a mapping of config keys"):
        load_config(path)


def test_an_empty_file_gives_the_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# nothing set\n")
    assert load_config(path) == load_config()


def test_a_key_given_twice_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: 10\n  steps: 20\n")
    with pytest.raises(ConfigError, match="key 'steps' is given twice"):
        load_config(path)


def test_yaml_is_parsed_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("seed: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_constraints_between_keys():
    with pytest.raises(ConfigError, match="'train.n_adv': got 5 with train.update=simultaneous"):
        load_config(None, ["train.update=simultaneous", "train.n_adv=5"])
    with pytest.raises(ConfigError, match="'generator.arch': got 'dcgan8' for data.name=ring; allowed: mlp"):
        load_config(None, ["data.name=ring"])
    with pytest.raises(ConfigError, match="'generator.arch': got 'mlp' for data.name=digits"):
        load_config(None, ["generator.arch=mlp"])
    with pytest.raises(ConfigError, match="'device': got 'mps'; allowed: cpu, cuda, cuda:N"):
        load_config(None, ["device=mps"])
    with pytest.raises(ConfigError, match="'objective': got 'vral' without meta-discriminators"):
        load_config(None, ["objective=vral"])
    with pytest.raises(ConfigError, match="'lens.enabled': got true for data.name=ring"):
        load_config(None, ["data.name=ring", "generator.arch=mlp", "lens.enabled=true"])


def test_a_setting_that_would_fail_after_training_is_refused_before():
    """KID draws subsets of kid_subset_size from the samples: fewer samples crashed at the first evaluation."""
    with pytest.raises(ConfigError, match=r"'eval.num_samples': got 500 with eval.kid_subset_size=1000"):
        load_config(None, ["eval.every=100", "eval.num_samples=500"])
    load_config(None, ["eval.every=100", "eval.num_samples=500", "eval.metrics=fid"])  # no KID: fine
    load_config(None, ["eval.num_samples=500"])  # no evaluation during training: fine


@pytest.mark.parametrize("options, message", [
    (["train.update=simultaneous"], "'train.generator_batch_size': got 128 with train.update=simultaneous"),
    (["cgd.enabled=true", "objective=wgan"], "'train.generator_batch_size': got 128 with train.update=joint"),
    (["r3gan.enabled=true"], "got 128 with train.update=alternating and objective=relativistic"),
    (["advas.enabled=true", "objective=wgan", "penalties.gradient_penalty=10"],
     "'train.generator_batch_size': got 128 with advas.enabled=true and penalties.gradient_penalty=10"),
    (["advas.enabled=true", "advas.estimator=unbiased"], "'advas.estimator': got 'unbiased' with train.generator_"),
])
def test_a_generator_batch_that_would_be_paired_with_the_real_batch_is_refused(options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, ["train.batch_size=64", "train.generator_batch_size=128", *options])
    load_config(None, ["train.batch_size=64", "train.generator_batch_size=64", *options])  # equal: fine


def test_a_generator_batch_of_its_own_is_taken_where_nothing_pairs_it():
    for options in ([], ["advas.enabled=true", "objective=hinge"], ["objective=vral", "vral.enabled=true"],
                    ["lens.enabled=true"]):  # VRAL's generator loss is a mean; its meta-discriminators judge D's batch
        config = load_config(None, ["train.batch_size=64", "train.generator_batch_size=128", *options])
        assert config.train.generator_batch_size == 128


def test_every_config_file_is_valid():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        load_config(path)


def test_config_reference_is_the_committed_docs():
    committed = (ROOT / "docs" / "CONFIG.md").read_text()
    assert committed == config_reference(), ("docs/CONFIG.md is stale: regenerate it with "
                                             "`equilibria config --reference > docs/CONFIG.md`")


def test_every_key_appears_in_the_reference():
    reference = config_reference()

    def keys(data, prefix=""):
        for key, value in data.items():
            if isinstance(value, dict):
                yield from keys(value, f"{prefix}{key}.")
            else:
                yield prefix + key

    missing = [key for key in keys(to_dict(load_config())) if f"| `{key}` |" not in reference]
    assert not missing
