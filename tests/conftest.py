"""Suite-wide settings: the models in tests are tiny, where torch's thread pool costs more than
it gives on a shared 2-core machine."""

import torch

torch.set_num_threads(1)
