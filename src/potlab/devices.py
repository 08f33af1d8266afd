"""Devices: the one reading of a device name a user writes (``auto``, ``cpu``, ``cuda``,
``cuda:N``) into a :class:`torch.device`, used by training, loading, MD, committees,
studies and active learning alike. ``auto`` is the first CUDA GPU when one is present,
else the CPU. Asking for a GPU that is not there is bad input (:class:`DeviceError`)."""

from __future__ import annotations

import re

import torch

from potlab.errors import InputError

#: the names accepted wherever potlab takes a device
DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"


class DeviceError(InputError):
    """A device name potlab does not know, or a GPU this machine does not have."""


def check_device_name(name: str) -> str:
    """``name`` when it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; else a DeviceError."""
    name = str(name).strip()
    if not re.match(DEVICE_PATTERN, name):
        raise DeviceError(f"device {name!r}: expected auto, cpu, cuda or cuda:N")
    return name


def resolve_device(name: str | torch.device | None = "auto", what: str = "device") -> torch.device:
    """The :class:`torch.device` that ``name`` means on this machine.

    ``what`` names the setting in the error message (``training.device``, ``--device``).
    """
    if isinstance(name, torch.device):
        name = str(name)
    name = "auto" if name is None else str(name).strip()
    if not re.match(DEVICE_PATTERN, name):
        raise DeviceError(f"{what}: {name!r} is not a device (expected auto, cpu, cuda or cuda:N)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"{what}: {name!r} requested but torch finds no CUDA GPU on this "
                          f"machine (use cpu or auto)")
    device = torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"{what}: {name!r} requested but this machine has "
                          f"{torch.cuda.device_count()} CUDA GPU(s)")
    return device


__all__ = ["DEVICE_PATTERN", "DeviceError", "check_device_name", "resolve_device"]
