"""Model zoo: a registry of the papers' families and thin builders (``create_model``, ``list_models``)."""

# Importing the family modules registers their builders.
from prunex.models import (  # noqa: F401
    densenet_cifar,
    densenet_imagenet,
    g_resnext,
    maskconnect,
    multiresnet,
    resnet_imagenet,
    resnext_cifar,
    sparsenet,
    sparsenet_imagenet,
    sparsenet_plus,
)
from prunex.models.complexity import Complexity, count_parameters
from prunex.models.g_resnext import from_torchvision_resnext
from prunex.models.learn_groups import GroupLearning, LearnedGroups, learn_groups
from prunex.models.registry import (
    UnknownModelError,
    analytic_complexity,
    builder_of,
    create_model,
    list_models,
    model_entry,
    register_model,
)

__all__ = [
    "Complexity",
    "UnknownModelError",
    "GroupLearning",
    "LearnedGroups",
    "analytic_complexity",
    "builder_of",
    "count_parameters",
    "create_model",
    "from_torchvision_resnext",
    "learn_groups",
    "list_models",
    "model_entry",
    "register_model",
]
