"""Which product channel a steered pull took, up to the molecule's symmetry.

A pull's channel is the set of start-structure bonds it broke (``"C4-C5"``, as
:func:`potlab.learn.explorers.pulls_broken_bonds` names them). In hexane, C0-C1 and C4-C5
are the same bond by symmetry: a model that breaks C0-C1 where the reference broke C4-C5
took the reference's channel, one that breaks C3-C4 did not, whatever its barrier reads.
Bonds are put in classes by colour refinement of the start structure's bond graph (atoms
coloured by element, then by the sorted colours of their neighbours, until the colours stop
splitting: Weisfeiler-Lehman); a bond's class is the pair of its atoms' colours. A channel
with several bonds is the sorted list of their classes."""

from __future__ import annotations

from collections.abc import Sequence

from ase import Atoms


def atom_colours(n_atoms: int, symbols: Sequence[str], bonds: Sequence[tuple[int, int]]) -> list[int]:
    """Per atom a colour: two atoms share it when colour refinement cannot tell them apart
    (same element, same multiset of neighbour colours, to every depth)."""
    neighbours: list[list[int]] = [[] for _ in range(n_atoms)]
    for i, j in bonds:
        neighbours[i].append(j)
        neighbours[j].append(i)
    colours = _relabel(list(symbols))
    while True:
        new = _relabel([(colours[a], tuple(sorted(colours[b] for b in neighbours[a])))
                        for a in range(n_atoms)])
        if len(set(new)) == len(set(colours)):
            return new
        colours = new


def _relabel(keys: list) -> list[int]:
    """Each key as a small integer, equal keys equal, numbered in sorted key order."""
    index = {k: n for n, k in enumerate(sorted(set(keys)))}
    return [index[k] for k in keys]


def bond_classes(start: Atoms) -> dict[str, str]:
    """``{"C4-C5": "C0-C1", ...}``: every bond of ``start`` (:func:`~potlab.learn.explorers.start_bonds`,
    the bonds :func:`~potlab.learn.explorers.pulls_broken_bonds` names) named by the first
    bond of its symmetry class in atom order."""
    from potlab.learn.explorers import start_bonds

    mon = start_bonds(start)
    sym = start.get_chemical_symbols()
    bonds = [(int(i), int(j)) for i, j in zip(mon.i, mon.j)]
    colours = atom_colours(len(start), sym, bonds)
    first: dict[tuple[int, int], str] = {}
    out = {}
    for i, j in sorted(bonds):
        name = f"{sym[i]}{i}-{sym[j]}{j}"
        out[name] = first.setdefault(tuple(sorted((colours[i], colours[j]))), name)
    return out


def channel(broken: str, classes: dict[str, str]) -> str:
    """One pull's channel: its broken bonds (``"C4-C5 C0-C1"``, ``""`` none) as their
    classes, sorted (``"C0-C1 C0-C1"``). A bond not in ``classes`` keeps its own name."""
    return " ".join(sorted(classes.get(b, b) for b in broken.split()))


def channel_agreement(model: Sequence[str], reference: Sequence[str],
                      classes: dict[str, str]) -> tuple[int, int]:
    """``(k, n)``: k of the model's n pulls took a channel some reference pull took."""
    ref = {channel(b, classes) for b in reference}
    return sum(channel(b, classes) in ref for b in model), len(model)
