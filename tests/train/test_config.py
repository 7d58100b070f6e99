import json

import pytest

from prunex.train import ConfigError, Phase, TrainConfig, build_config
from prunex.train.config import rescale_phases
from prunex.train.recipes import DEFAULT_MODEL_KWARGS


def test_no_arguments_is_maskconnect_20_4_8_on_digits_in_four_phases():
    cfg = build_config({})
    assert (cfg.model, cfg.dataset) == ("maskconnect_cifar", "digits")
    assert cfg.model_kwargs == DEFAULT_MODEL_KWARGS
    assert [p.name for p in cfg.phases] == ["learn-connectivity", "fine-tune-1", "fine-tune-2", "fine-tune-3"]
    assert cfg.phases[0].gate_lr > 0 and cfg.phases[1].freeze_connectivity


def test_model_arguments_without_a_model_change_the_default_network():
    cfg = build_config({"model_kwargs": {"connectivity": "real_valued", "fan_in": 2}})
    assert cfg.model == "maskconnect_cifar"
    assert cfg.model_kwargs == {**DEFAULT_MODEL_KWARGS, "connectivity": "real_valued", "fan_in": 2}
    named = build_config({"model": "maskconnect_cifar", "model_kwargs": {"depth": 11}})
    assert named.model_kwargs == {"depth": 11}  # a named model is built from its own defaults


def test_paper_recipe_for_maskconnect_on_cifar():
    cfg = build_config({"dataset": "cifar100"})
    assert [p.epochs for p in cfg.phases] == [120, 100, 50, 50]
    assert [p.lr for p in cfg.phases] == [0.1, 0.1, 0.01, 0.001]
    assert cfg.phases[0].gate_lr == 0.2 and cfg.batch_size == 128 and cfg.weight_decay == 5e-4


def test_precedence_recipe_then_file_then_options(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('model = "sparsenet_cifar"\nbatch_size = 32\nweight_decay = 0.001\n[model_kwargs]\ndepth = 16\n')
    cfg = build_config({"batch_size": 16, "dataset": "cifar10"}, str(path))
    assert cfg.model == "sparsenet_cifar" and cfg.model_kwargs == {"depth": 16}
    assert cfg.batch_size == 16  # option beats file
    assert cfg.weight_decay == 0.001  # file beats recipe (SparseNet's 1e-4)
    assert cfg.phases[0].epochs == 300 and cfg.nesterov  # the rest from the paper recipe


def test_epochs_rescale_the_phases():
    cfg = build_config({"dataset": "cifar10", "epochs": 32})
    assert [p.epochs for p in cfg.phases] == [12, 10, 5, 5]
    assert cfg.total_epochs == 32
    assert sum(p.epochs for p in rescale_phases(cfg.phases, 4)) == 4
    with pytest.raises(ConfigError, match="fewer than"):
        build_config({"dataset": "cifar10", "epochs": 3})


def test_bad_configuration_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="unknown configuration keys: lr_max"):
        TrainConfig.from_dict({"lr_max": 1})
    with pytest.raises(ConfigError, match="schedule"):
        Phase("x", 1, 0.1, schedule="linear")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot parse"):
        build_config({}, str(bad))
    with pytest.raises(ConfigError, match="recipe"):
        build_config({"recipe": "fast"})


def test_config_round_trips_through_json():
    cfg = build_config({"dataset": "cifar10"})
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
