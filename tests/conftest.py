"""Suite-wide settings: the models in tests are tiny, where torch's thread pool costs more than
it gives on a shared 2-core machine; synthscape's cache goes to a folder of this run's own."""

import os
import shutil
import tempfile

import pytest
import torch

from hiast.data.synthscape import CACHE_ENV

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def synthscape_cache():
    # Set before any test starts a Ray cluster, whose workers inherit it.
    folder = tempfile.mkdtemp(prefix="hiast-test-synthscape-")
    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = folder
    yield folder
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old
    shutil.rmtree(folder, ignore_errors=True)
