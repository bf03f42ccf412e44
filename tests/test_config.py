"""Config parsing: types, ranges, unknown keys and overrides give errors that name key and value."""

import pytest

from equilibria.training.config import Config, ConfigError, from_dict, load_config, set_key, to_dict


def test_defaults_are_the_digits_demo():
    config = load_config()
    assert config.data.name == "digits" and config.generator.arch == "dcgan8"
    assert from_dict(Config, to_dict(config)) == config


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
        ({"objective": "vanilla"}, r"'objective': got 'vanilla'; allowed: one of minimax, nonsaturating"),
        ({"data": {"name": "imagenet"}}, r"'data.name': got 'imagenet'; allowed: one of digits"),
        ({"log": {"tensorboard": "yes"}}, r"'log.tensorboard': got 'yes'; allowed: true or false"),
        ({"data": 3}, r"'data': got 3; allowed: a mapping"),
    ],
)
def test_bad_values_are_reported_with_key_value_and_allowed(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Config, data)


def test_integers_are_accepted_for_floats_and_tuples_converted():
    config = from_dict(Config, {"optim": {"adversary": {"lr": 1, "betas": [0, 0.9]}}})
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


def test_every_key_is_documented():
    import dataclasses
    import typing
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "CONFIG.md").read_text()

    def keys(cls, prefix=""):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                yield from keys(hints[f.name], prefix + f.name + ".")
            else:
                yield prefix + f.name

    def documented(key):
        parent = key.rsplit(".", 1)[0]
        return f"`{key}`" in doc or (parent.endswith("optim") or ".optim." in key) and f"`{parent}.*`" in doc

    missing = [key for key in keys(Config) if not documented(key)
               and f"`{key.replace('optim.adversary.', 'optim.generator.')}`" not in doc]
    assert not missing, f"docs/CONFIG.md misses {missing}"
