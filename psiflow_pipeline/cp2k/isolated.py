"""Free atoms: the ground-state spin of each element and its template."""

from __future__ import annotations

import re

from psiflow_pipeline.cp2k.template import TemplateError

AUFBAU = ["1s", "2s", "2p", "3s", "3p", "4s", "3d", "4p", "5s", "4d", "5p", "6s", "4f", "5d", "6p", "7s", "5f", "6d"]


def ground_state_multiplicity(number: int) -> int:
    """2S+1 of a free atom by the aufbau principle and Hund's rule.

    Only the last, partly filled subshell has unpaired electrons; the few
    exceptions to aufbau (Cr, Cu, ...) are not modelled.
    """
    left = number
    for subshell in AUFBAU:
        capacity = 2 * (2 * "spdf".index(subshell[1]) + 1)
        if left <= capacity:
            unpaired = left if left <= capacity // 2 else capacity - left
            return unpaired + 1
        left -= capacity
    raise ValueError(f"atomic number {number} beyond the aufbau table")


def isolated_atom_template(template: str, number: int) -> str:
    """The template set up for one free atom: its ground-state spin, unrestricted."""
    multiplicity = ground_state_multiplicity(number)
    text = re.sub(r"^\s*(MULTIPLICITY|UKS|LSD|UNRESTRICTED_KOHN_SHAM)\b.*\n", "", template, flags=re.I | re.M)
    dft = re.search(r"^\s*&DFT\b.*$", text, flags=re.IGNORECASE | re.MULTILINE)
    if dft is None:
        raise TemplateError("the template has no &DFT section to set the spin of an isolated atom")
    settings = f"\n    MULTIPLICITY {multiplicity}\n    UKS {'T' if multiplicity > 1 else 'F'}"
    return text[: dft.end()] + settings + text[dft.end() :]
