import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Small tensors: one thread is fastest, and extra threads stall when the two cores are busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
