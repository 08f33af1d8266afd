"""MACE (Batatia et al., NeurIPS 2022) assembled from mace-torch's own modules, and the
bridge to mace-torch's model files both ways.

potlab builds a ``mace.modules.MACE`` (zero atomic energies, one head) and runs its blocks
on potlab's graph: node embedding, spherical harmonics, Bessel radial embedding, the
interaction and equivariant product blocks and the readouts (and ZBL pair repulsion when
enabled). Forces and stress come from :class:`~potlab.potential.Potential`, not from mace,
and the potential adds ``E0[Z] + shift + scale * e_i`` around the model's per-atom ``e_i``.

mace-torch's ``ScaleShiftMACE`` computes the same per-atom energy,
``atomic_energies[Z] + scale * (e_pair + sum of readouts) + shift`` (``ScaleShiftBlock``
on the summed interaction energies, then ``AtomicEnergiesBlock``), so the two convert
exactly:

- :meth:`MACE.to_mace_torch` gives a ``ScaleShiftMACE`` with potlab's E0, shift and scale
  inside (``potlab export --format mace``, :func:`potlab.potential.export.export_mace`);
- ``init_from: FILE.model`` in the model config builds potlab's MACE from a mace-torch model
  file: hyper-parameters from the file, weights copied (a foundation model's other elements
  dropped the way mace-torch's own fine-tuning does), and the file's E0, shift and scale in
  :attr:`MACE.initial_output` for the potential (:func:`potential_from_mace_file`).

Reading a mace-torch ``.model`` file unpickles it (mace-torch saves the whole module):
only read files you trust.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from potlab.models.e3nn_import import e3nn_constants_loadable, import_mace_and_e3nn

import_mace_and_e3nn()  # e3nn's constants need a scoped torch.load workaround (see there)
import mace.modules
import numpy as np
import torch
from e3nn import o3
from pydantic import Field, model_validator
from torch import nn

from potlab.errors import InputError
from potlab.graph import GraphBatch, edge_vectors
from potlab.models.radial import SpeciesIndex
from potlab.models.registry import ModelConfig, register

#: interaction blocks potlab's MACE runs (mace-torch's names)
Interaction = Literal["RealAgnosticResidualInteractionBlock", "RealAgnosticInteractionBlock"]


class MaceFileError(InputError):
    """A mace-torch model file that cannot be read, or that potlab's MACE cannot hold."""


@register("mace")
class MACE(nn.Module):
    """Equivariant MACE with higher-order (body-ordered) messages."""

    class Config(ModelConfig):
        num_channels: int = 32
        max_L: int = 1
        max_ell: int = 3
        correlation: int = 3
        num_interactions: int = 2
        num_bessel: int = 8
        num_polynomial_cutoff: int = 5
        radial_mlp: list[int] = Field(default_factory=lambda: [64, 64, 64])
        mlp_irreps: str = "16x0e"
        interaction: Interaction = "RealAgnosticResidualInteractionBlock"
        interaction_first: Interaction = "RealAgnosticResidualInteractionBlock"
        use_reduced_cg: bool = True  # mace_run_train's default is False
        pair_repulsion: bool = False  # ZBL, as mace_run_train --pair_repulsion
        distance_transform: Literal["None", "Agnesi", "Soft"] = "None"
        radial_type: Literal["bessel", "gaussian", "chebyshev"] = "bessel"
        avg_num_neighbors: float | None = None  # None: the training data's
        init_from: str | None = None  # a mace-torch model file: hyper-parameters and weights

        @model_validator(mode="after")
        def _from_mace_file(self):
            if self.init_from is None:
                return self
            given = self.model_fields_set - {"init_from"}
            for key, value in mace_file_config(self.init_from).items():
                if key in given and not _same(key, getattr(self, key), value):
                    raise ValueError(f"init_from {self.init_from}: the file has {key}={value!r}, "
                                     f"the config says {getattr(self, key)!r} (leave it out)")
                setattr(self, key, value)
            return self

    presets: ClassVar[dict[str, dict]] = {
        "seed000": {"num_channels": 128, "max_L": 1, "cutoff": 6.0},
        "tiny": {"num_channels": 8, "max_L": 1, "correlation": 2, "num_interactions": 2,
                 "radial_mlp": [16, 16], "mlp_irreps": "8x0e"},
    }

    def __init__(self, config: MACE.Config, elements: list[int], avg_num_neighbors: float = 10.0):
        super().__init__()
        self.cutoff = config.cutoff
        self.elements = [int(z) for z in elements]
        self.species_index = SpeciesIndex(elements)
        self.num_elements = len(elements)
        if config.avg_num_neighbors is not None:
            avg_num_neighbors = config.avg_num_neighbors
        self.avg_num_neighbors = float(avg_num_neighbors)
        #: E0 {Z: eV}, shift (eV/atom) and scale (eV) of the mace-torch file this model was
        #: initialised from (``init_from``), for the potential around it; None otherwise.
        self.initial_output: dict[str, Any] | None = None
        # float64 while building from a file, so constant buffers match the file's exactly
        dtype = torch.float64 if config.init_from else torch.get_default_dtype()
        with warnings.catch_warnings(), default_dtype(dtype):  # e3nn's code generation is noisy
            warnings.simplefilter("ignore")
            self.mace = mace.modules.MACE(**mace_kwargs(config, self.elements, self.avg_num_neighbors))
        if config.init_from:
            source = read_mace_file(config.init_from)
            copy_mace_weights(source, self.mace, self.elements, config, config.init_from)
            self.initial_output = mace_output(source, self.elements)
        # the saved spec needs neither the file nor its path: hyper-parameters are filled in
        self.config = config.model_copy(update={"init_from": None})

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        m = self.mace
        vectors, lengths = edge_vectors(batch)
        node_attrs = nn.functional.one_hot(
            self.species_index(batch.species), self.num_elements
        ).to(vectors.dtype)  # [n_atoms, n_elements]
        heads = torch.zeros_like(batch.species)
        node_feats = m.node_embedding(node_attrs)
        edge_attrs = m.spherical_harmonics(vectors)  # [n_edges, (l_max+1)^2]
        edge_feats, cutoff = m.radial_embedding(
            lengths[:, None], node_attrs, batch.edge_index, m.atomic_numbers
        )
        energy = torch.zeros(batch.num_nodes, dtype=vectors.dtype, device=vectors.device)
        if hasattr(m, "pair_repulsion_fn"):  # ZBL, scaled with the readouts as in ScaleShiftMACE
            energy = energy + m.pair_repulsion_fn(
                lengths[:, None], node_attrs, batch.edge_index, m.atomic_numbers
            )
        feats = []
        for i, (interaction, product) in enumerate(zip(m.interactions, m.products)):
            node_feats, sc = interaction(
                node_attrs=node_attrs, node_feats=node_feats, edge_attrs=edge_attrs,
                edge_feats=edge_feats, edge_index=batch.edge_index, cutoff=cutoff,
                first_layer=(i == 0),
            )
            node_feats = product(node_feats=node_feats, sc=sc, node_attrs=node_attrs)
            feats.append(node_feats)
        for i, readout in enumerate(m.readouts):
            energy = energy + readout(feats[i], heads)[:, 0]
        return energy  # [n_atoms]

    def to_mace_torch(self, e0: dict[int, float], shift: float, scale: float,
                      dtype: torch.dtype = torch.float64) -> nn.Module:
        """This model as a mace-torch ``ScaleShiftMACE`` whose energies are potlab's
        potential's: per atom ``e0[Z] + shift + scale * e_i`` (eV; ``shift`` eV/atom,
        ``scale`` eV). Weights are copied; the result shares no tensors with this model."""
        kwargs = mace_kwargs(self.config, self.elements, self.avg_num_neighbors)
        kwargs["atomic_energies"] = np.array([[float(e0.get(z, 0.0)) for z in self.elements]])
        with warnings.catch_warnings(), default_dtype(torch.float64):
            warnings.simplefilter("ignore")
            out = mace.modules.ScaleShiftMACE(
                atomic_inter_scale=float(scale), atomic_inter_shift=float(shift), **kwargs
            )
        state = {k: v for k, v in self.mace.state_dict().items() if k != _E0_KEY}
        missing, unexpected = out.load_state_dict(state, strict=False)
        if set(missing) != {_E0_KEY, "scale_shift.scale", "scale_shift.shift"} or unexpected:
            raise RuntimeError(f"ScaleShiftMACE does not match potlab's MACE: missing {missing}, "
                               f"unexpected {unexpected}")
        return out.to(dtype).eval()


_E0_KEY = "atomic_energies_fn.atomic_energies"


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """torch's default dtype set to ``dtype`` inside the block only."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def mace_kwargs(config: MACE.Config, elements: list[int], avg_num_neighbors: float) -> dict[str, Any]:
    """Keyword arguments of ``mace.modules.MACE`` (and ``ScaleShiftMACE``) for a config."""
    hidden = " + ".join(
        f"{config.num_channels}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(config.max_L + 1)
    )
    return {
        "r_max": config.cutoff,
        "num_bessel": config.num_bessel,
        "num_polynomial_cutoff": config.num_polynomial_cutoff,
        "max_ell": config.max_ell,
        "interaction_cls": mace.modules.interaction_classes[config.interaction],
        "interaction_cls_first": mace.modules.interaction_classes[config.interaction_first],
        "num_interactions": config.num_interactions,
        "num_elements": len(elements),
        "hidden_irreps": o3.Irreps(hidden),
        "MLP_irreps": o3.Irreps(config.mlp_irreps),
        "atomic_energies": np.zeros(len(elements)),
        "avg_num_neighbors": avg_num_neighbors,
        "atomic_numbers": list(elements),
        "correlation": config.correlation,
        "gate": nn.functional.silu,
        "radial_MLP": list(config.radial_mlp),
        "use_reduced_cg": config.use_reduced_cg,
        "pair_repulsion": config.pair_repulsion,
        "distance_transform": config.distance_transform,
        "radial_type": config.radial_type,
    }


# ---- mace-torch model files -> potlab --------------------------------------------------


def read_mace_file(path: str | os.PathLike) -> nn.Module:
    """The ``ScaleShiftMACE`` in a mace-torch model file (``torch.save`` of the module, as
    ``mace_run_train`` writes it and the foundation models ship), on the CPU. Unpickles the
    file. Raises :class:`MaceFileError` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise MaceFileError(f"{p}: no such mace-torch model file")
    st = p.stat()
    return _read_mace_file(str(p.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4)
def _read_mace_file(path: str, mtime_ns: int, size: int) -> nn.Module:
    try:
        with e3nn_constants_loadable(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - torch raises pickle, zip, runtime errors
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise MaceFileError(f"{path}: not a mace-torch model file: {first[:200]}") from None
    if not isinstance(model, mace.modules.ScaleShiftMACE):
        raise MaceFileError(f"{path}: holds a {type(model).__name__}, not a mace-torch "
                            f"ScaleShiftMACE (what mace_run_train writes)")
    return model.eval()


def mace_file_config(path: str | os.PathLike) -> dict[str, Any]:
    """potlab MACE Config keys of the model in a mace-torch file (cutoff, channels, ...).

    Raises :class:`MaceFileError` when the file uses a mace-torch feature potlab's MACE
    does not run (several heads, cuequivariance, other interaction blocks, ...)."""
    from mace.tools.scripts_utils import extract_config_mace_model

    model = read_mace_file(path)
    c = extract_config_mace_model(model)

    def unsupported(what: str):
        return MaceFileError(f"{path}: potlab's MACE does not run {what}")

    if len(c["heads"]) != 1:
        raise unsupported(f"several heads ({', '.join(c['heads'])})")
    if c["cueq_config"] is not None or c["embedding_specs"] is not None:
        raise unsupported("cuequivariance or embedding models (convert to e3nn first)")
    for key in ("use_so3", "use_agnostic_product", "use_last_readout_only",
                "use_embedding_readout", "use_edge_irreps_first"):
        if c[key]:
            raise unsupported(f"{key}=True")
    if c["edge_irreps"] is not None or not c["apply_cutoff"]:
        raise unsupported("edge_irreps or apply_cutoff=False")
    if c["gate"] is not nn.functional.silu or c["readout_cls"] is not mace.modules.NonLinearReadoutBlock:
        raise unsupported("a gate other than silu or a readout other than NonLinearReadoutBlock")
    names = {c["interaction_cls"].__name__, c["interaction_cls_first"].__name__}
    if not names <= set(get_args(Interaction)):
        raise unsupported(f"interaction block {', '.join(sorted(names))}")
    hidden = o3.Irreps(str(c["hidden_irreps"]))
    channels = {mul for mul, _ in hidden}
    max_L = max(ir.l for _, ir in hidden)
    if (len(channels) != 1 or [(ir.l, ir.p) for _, ir in hidden]
            != [(l, (-1) ** l) for l in range(max_L + 1)]):
        raise unsupported(f"hidden irreps {hidden} (potlab: C channels for l = 0..L, parity (-1)^l)")
    out = {
        "cutoff": float(c["r_max"]),
        "num_channels": channels.pop(),
        "max_ell": int(c["max_ell"]),
        "correlation": int(c["correlation"]),
        "num_interactions": int(c["num_interactions"]),
        "num_bessel": int(c["num_bessel"]),
        "num_polynomial_cutoff": int(c["num_polynomial_cutoff"]),
        "radial_mlp": [int(h) for h in c["radial_MLP"]],
        "mlp_irreps": str(c["MLP_irreps"]),
        "interaction": c["interaction_cls"].__name__,
        "interaction_first": c["interaction_cls_first"].__name__,
        "use_reduced_cg": bool(c["use_reduced_cg"]),
        "pair_repulsion": bool(c["pair_repulsion"]),
        "distance_transform": str(c["distance_transform"] or "None"),
        "radial_type": c["radial_type"],
        "avg_num_neighbors": float(c["avg_num_neighbors"]),
    }
    if out["num_interactions"] > 1:  # one interaction keeps only scalars: L is not in the file
        out["max_L"] = max_L
    return out


def _same(key: str, a: Any, b: Any) -> bool:
    if key == "mlp_irreps":
        return o3.Irreps(a) == o3.Irreps(b)
    if isinstance(b, float):
        return abs(float(a) - b) <= 1e-6 * max(1.0, abs(b))
    return a == b


def mace_output(source: nn.Module, elements: list[int]) -> dict[str, Any]:
    """E0 {Z: eV} (of ``elements``), shift (eV/atom) and scale (eV) of a ScaleShiftMACE."""
    zs = [int(z) for z in source.atomic_numbers]
    e0 = torch.atleast_2d(source.atomic_energies_fn.atomic_energies)[0].double()
    return {"e0": {z: float(e0[zs.index(z)]) for z in elements},
            "shift": float(torch.atleast_1d(source.scale_shift.shift)[0]),
            "scale": float(torch.atleast_1d(source.scale_shift.scale)[0])}


def copy_mace_weights(source: nn.Module, target: nn.Module, elements: list[int],
                      config: MACE.Config, path: str | os.PathLike) -> None:
    """Copy a ScaleShiftMACE's weights into potlab's ``mace.modules.MACE`` for ``elements``
    (a subset of the file's; the file's other elements are dropped and the element-indexed
    weights rescaled by mace-torch's own ``load_foundations_elements``, which keeps the
    energies of the kept elements). Atomic energies, scale and shift stay outside."""
    from mace.tools.finetuning_utils import load_foundations_elements
    from mace.tools.utils import AtomicNumberTable

    zs = [int(z) for z in source.atomic_numbers]
    missing = sorted(set(elements) - set(zs))
    if missing:
        raise MaceFileError(f"{path}: the model has no element Z={missing} (it has Z={zs}); "
                            f"a mace-torch model can only be fine-tuned on its own elements")
    if zs != list(elements):
        load_foundations_elements(target, source, AtomicNumberTable(list(elements)),
                                  load_readout=True, use_shift=False, use_scale=False,
                                  max_L=config.max_L, default_dtype=torch.float64)
    # every tensor not indexed by element (equal shapes) is copied as it is in the file
    src = source.state_dict()
    skip = {_E0_KEY, "atomic_numbers"}
    with torch.no_grad():
        for key, value in target.state_dict(keep_vars=True).items():
            if key in skip or key not in src or src[key].shape != value.shape:
                continue
            value.copy_(src[key])
    for inter, inter_src in zip(target.interactions, source.interactions):
        inter.avg_num_neighbors = inter_src.avg_num_neighbors


def potential_from_mace_file(path: str | os.PathLike, dtype: str = "float64"):
    """A potlab :class:`~potlab.potential.Potential` holding the model of a mace-torch file,
    with the file's atomic energies, shift and scale: its energies and forces are the
    file's (eV, eV/A), on every element of the file."""
    from potlab.potential.potential import DTYPES, Potential

    source = read_mace_file(path)
    elements = [int(z) for z in source.atomic_numbers]
    pot = Potential("mace", {"init_from": str(path)}, elements)
    out = pot.model.initial_output
    with torch.no_grad():
        for z, e in out["e0"].items():
            pot.e0_table[z] = e
        pot.shift.fill_(out["shift"])
        pot.scale.fill_(out["scale"])
    pot.avg_num_neighbors = pot.model.avg_num_neighbors
    pot.metadata["init_from"] = str(path)
    return pot.to(DTYPES[dtype]).eval()
