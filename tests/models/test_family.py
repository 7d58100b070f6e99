"""A family's facts (recipe, reference, Mini-ImageNet stem) come from its registry entry, never from its name."""

import pytest
from torch import nn

from prunex.models import registry
from prunex.models.complexity import Complexity
from prunex.models.family import Family, Reference
from prunex.models.references import default_reference
from prunex.train.recipes import build_config, family


def _register(monkeypatch, name: str, **facts) -> None:
    def builder(*, num_classes: int = 10, in_chans: int = 3, stem_pool: bool = False) -> nn.Module:
        return nn.Sequential(nn.Conv2d(in_chans, 4, 3), nn.Flatten(), nn.LazyLinear(num_classes))

    builder.__name__ = name
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register_model(paper="test", complexity=lambda **kw: Complexity(32, 32), **facts)(builder)


def test_a_model_trains_with_its_registered_familys_recipe_whatever_its_name(monkeypatch):
    _register(monkeypatch, "resnext_lookalike", family=Family.SPARSENET)
    _register(monkeypatch, "my_gated_net", family=Family.MASKCONNECT, mini_imagenet_stem=True)
    assert family("resnext_lookalike") is Family.SPARSENET  # a name prefix once said "resnext"
    assert family("my_gated_net") is Family.MASKCONNECT
    paper = build_config({"model": "my_gated_net", "dataset": "cifar10"})
    assert [p.name for p in paper.phases] == ["learn-connectivity", "fine-tune-1", "fine-tune-2", "fine-tune-3"]
    mini = build_config({"model": "my_gated_net", "dataset": "imagefolder", "pipeline": "mini-imagenet"})
    assert mini.model_kwargs["stem_pool"] is True
    other = build_config(
        {"model": "resnext_lookalike", "dataset": "imagefolder", "pipeline": "mini-imagenet", "recipe": "quick"}
    )
    assert "stem_pool" not in other.model_kwargs


def test_a_models_reference_is_its_registered_reference(monkeypatch):
    _register(monkeypatch, "maskconnect_lookalike", family=Family.OTHER)
    _register(monkeypatch, "plain_twin_net", family=Family.OTHER, reference=lambda kw: Reference("resnext_cifar", kw))
    assert default_reference({"name": "maskconnect_lookalike", "kwargs": {"depth": 11}}) is None
    assert default_reference({"name": "plain_twin_net", "kwargs": {"depth": 11}}) == Reference(
        "resnext_cifar", {"depth": 11}
    )
    assert family("torchvision:resnet18") is Family.OTHER and family("torchvision:resnet18", True) is Family.DGCONV


@pytest.mark.parametrize("name", registry.list_models())
def test_every_registered_family_names_its_recipe(name):
    entry = registry.model_entry(name)
    assert entry.family is not Family.OTHER  # each paper family has its recipes
