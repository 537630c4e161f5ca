"""One module per standard: each turns the period's facts into its controls' sections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from reports.facts import Facts
from reports.model import Integrity, Section, Standard
from reports.standards import cis, gdpr, hipaa, iso_27001, pci_dss, sox

SectionBuilder = Callable[[Facts, Integrity], list[Section]]

BUILDERS: Final[dict[Standard, SectionBuilder]] = {
    Standard.PCI_DSS: pci_dss.sections,
    Standard.HIPAA: hipaa.sections,
    Standard.SOX: sox.sections,
    Standard.GDPR: gdpr.sections,
    Standard.ISO_27001: iso_27001.sections,
    Standard.CIS: cis.sections,
}
