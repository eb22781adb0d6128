"""Offline datasets: one in-memory `Dataset`, readers/writers for D4RL, Minari and npz."""

from dualrl.data.d4rl import read_d4rl, write_d4rl
from dualrl.data.dataset import Dataset, DatasetError, concatenate
from dualrl.data.io import format_summary, load_dataset, read_npz, save_npz, summarize
from dualrl.data.minari import read_minari, write_minari

__all__ = [
    "Dataset",
    "DatasetError",
    "concatenate",
    "format_summary",
    "load_dataset",
    "read_d4rl",
    "read_minari",
    "read_npz",
    "save_npz",
    "summarize",
    "write_d4rl",
    "write_minari",
]
