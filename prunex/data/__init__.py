"""Datasets: ``digits`` (embedded, offline default), ``cifar10`` / ``cifar100`` and ``imagefolder`` read from a
local directory (never downloaded), ``synthetic`` for smoke tests."""

from prunex.data.registry import (
    DATASETS,
    calibration_batch,
    default_workers,
    image_shape,
    labelled_images,
    load_dataset,
    readable_test_images,
)
from prunex.data.types import DatasetError, DatasetInfo, ImagePipeline, LoadedData, Normalisation

__all__ = [
    "DATASETS",
    "DatasetError",
    "DatasetInfo",
    "ImagePipeline",
    "LoadedData",
    "Normalisation",
    "calibration_batch",
    "default_workers",
    "image_shape",
    "labelled_images",
    "load_dataset",
    "readable_test_images",
]
