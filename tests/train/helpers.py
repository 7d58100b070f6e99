"""Tiny configurations that train in seconds on the CPU."""

from prunex.train import Phase, TrainConfig

TINY_MASKCONNECT = dict(depth=11, bottleneck_width=4, cardinality=4, fan_in=2)


def tiny_config(out, **overrides) -> TrainConfig:
    base = dict(
        model="maskconnect_cifar",
        model_kwargs=dict(TINY_MASKCONNECT),
        dataset="synthetic",
        phases=(
            Phase("learn-connectivity", 2, 0.05, gate_lr=0.2),
            Phase("fine-tune", 2, 0.05, freeze_connectivity=True, schedule="cosine"),
        ),
        batch_size=64,
        out=str(out),
        seed=7,
    )
    base.update(overrides)
    return TrainConfig(**base)
