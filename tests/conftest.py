import pytest
import torch


@pytest.fixture(autouse=True)
def _two_threads():
    """The CI machines have two cores; keep every test on them and independent of earlier tests' threads."""
    torch.set_num_threads(2)
    yield
