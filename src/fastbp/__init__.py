"""fastbp: multilayer perceptrons trained by backpropagation on the CPU.

One flat parameter buffer, Numba kernels for the forward pass, the chain rule
and the update, and a thin model class on top::

    import fastbp
    net = fastbp.MLP([64, 32, 10], activation="tanh", output="softmax", seed=0)
    history = net.fit(X, y, epochs=20, batch_size=32, lr=0.1)
    net.predict(X_test)
"""
from . import datasets, distributed, kernels, landscape, plot, schedules
from ._config import show_config
from .io import ModelFileError, load
from .model import MLP
from .optim import LBFGS, SGD, Adam, AdamW, RMSprop
from .threads import get_num_threads, set_num_threads
from .train import EarlyStopping, History, ModelCheckpoint, TrainingDivergedError

__version__ = "0.1.0"
__all__ = ["MLP", "History", "EarlyStopping", "ModelCheckpoint", "load", "ModelFileError",
           "TrainingDivergedError",
           "SGD", "Adam", "AdamW", "RMSprop", "LBFGS", "kernels", "datasets", "plot", "schedules",
           "distributed", "landscape",
           "set_num_threads", "get_num_threads", "show_config", "__version__"]
