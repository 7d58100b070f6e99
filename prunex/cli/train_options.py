"""Options of ``prunex train`` whose help needs room (the command module stays a list of its options)."""

import typer

OUT = typer.Option(
    None,
    "--out",
    "-o",
    rich_help_panel="Run directory",
    metavar="DIR",
    help="Run directory (default: runs/<model>-<dataset>[-N]); it must not hold a run. With --resume: continue "
    "in this new directory instead of the checkpoint's.",
)
RESUME = typer.Option(
    None,
    "--resume",
    rich_help_panel="Run directory",
    metavar="RUN",
    help="Continue a run from its directory or checkpoint exactly where its last complete epoch ended, with "
    "the run's own settings (only --device, --workers, --compile, --channels-last, --branch-parallel, --out "
    "and --quiet may be given). Refuses to overwrite work newer than the checkpoint.",
)
WORKERS = typer.Option(
    None,
    "--workers",
    min=0,
    rich_help_panel="Execution",
    help="Loader processes for datasets read from disk (default: one per core, at most 8). In-memory datasets "
    "(digits, CIFAR, synthetic) are drawn and augmented on the training device and use none.",
)
BRANCH_PARALLEL = typer.Option(
    None,
    "--branch-parallel",
    min=1,
    rich_help_panel="Execution",
    help="Under torchrun: ranks that split every Multi-ResNet block's k "
    "residual functions (N divides k and the process count; data parallel across groups).",
)
LEARN_GROUPS = typer.Option(
    None,
    "--learn-groups",
    rich_help_panel="Model",
    metavar="WHICH",
    help="Replace the model's convolutions by DGConvs that start as exactly the same function and learn their "
    "grouping: spatial (k×k, the default), pointwise (1×1), depthwise, and/or module-name patterns (layer3.*), "
    "comma-separated. With --budget, the DGConv resource constraint.",
)
WEIGHTS = typer.Option(
    None,
    "--weights",
    rich_help_panel="Model",
    help="A state dict for the new model (.safetensors or a torch.save file, read with weights_only), loaded "
    "before its convolutions learn their grouping.",
)
STRUCTURE_FROM = typer.Option(
    None,
    "--structure-from",
    rich_help_panel="Model",
    help="Retrain from scratch the plain grouped network a DGConv run learned (DGConv's Table 6): the run's "
    "network with each DGConv replaced by a conv of its learned group count, on the run's dataset by default.",
)
PIPELINE = typer.Option(
    None,
    "--pipeline",
    rich_help_panel="Data",
    metavar="imagenet|mini-imagenet",
    help="An image folder's pipeline: imagenet (default, fb.resnet.torch's: random resized crops of 224, colour "
    "jitter, lighting noise, ImageNet standardisation, flips) or "
    "mini-imagenet (MaskConnect E.3: 84×84 images, mean image subtracted, random 64×64 crops and flips; the "
    "MaskConnect / ResNeXt CIFAR networks get their max-pool stem). Picks the recipe too.",
)
TEN_CROP = typer.Option(
    False,
    "--ten-crop",
    rich_help_panel="Data",
    help="Image folders: test every image on its ten crops (corners, centre, and their mirror images) and average "
    "the softmax, as fb.resnet.torch tests ImageNet (Multi-ResNet Table IV). Loss and accuracy in metrics.jsonl "
    "are then the ten-crop ones.",
)
NORMALISATION = typer.Option(
    None,
    "--normalisation",
    rich_help_panel="Data",
    metavar="channel|pixel-mean",
    help="channel (per-channel mean and std) or pixel-mean (the training split's mean image subtracted). Default: "
    "the recipe's (pixel-mean for MaskConnect / ResNeXt on CIFAR and Mini-ImageNet, as the paper) or the dataset's.",
)

NPROC_PER_NODE = typer.Option(
    None,
    "--nproc-per-node",
    min=1,
    metavar="N",
    rich_help_panel="Execution",
    help="Start N training processes on this machine with torch.distributed's runner (what torchrun does), once "
    "the options, the output directory and the --branch-parallel layout have been checked here, so that a mistake "
    "is one line before any process starts.",
)
