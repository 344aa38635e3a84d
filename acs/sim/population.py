"""Who is in the fleet: deterministic identities, firmware mix and OLT/PON placement per seed.

Device `index` i of a fleet gets the same serial, OUI, firmware and PON port for the same seed,
so runs are reproducible and an ACS can be checked against the expected grouping.
"""

from __future__ import annotations

from dataclasses import dataclass

from acs.sim.device import DeviceSettings, SimDevice
from acs.sim.profile import PROFILE_NAMES, load_profile
from acs.sim.values import unit
from cwmp import CwmpVersion

# Share of the fleet on each of a profile's software versions (oldest first).
FIRMWARE_MIX = (0.5, 0.3, 0.2)


@dataclass(frozen=True)
class PopulationPlan:
    profile: str = "huawei-hg8245"  # a profile name or "mix"
    cwmp_version: str = "1.0"  # "1.0", "1.4" or "mix"
    seed: int = 1
    onts_per_pon: int = 32  # devices sharing one PON port (an outage group)
    pons_per_olt: int = 16
    firmware_mix: tuple[float, ...] = FIRMWARE_MIX  # share on each software version, oldest first

    def profile_of(self, index: int) -> str:
        if self.profile != "mix":
            return self.profile
        return PROFILE_NAMES[index % len(PROFILE_NAMES)]

    def version_of(self, index: int) -> CwmpVersion:
        if self.cwmp_version == "mix":
            return CwmpVersion.V1_4 if unit(self.seed, index, "cwmp") < 0.5 else CwmpVersion.V1_0
        return CwmpVersion(self.cwmp_version)

    def placement(self, index: int) -> tuple[str, str, int]:
        """(OLT id, PON port "frame/slot/port", ONT id) of device `index`."""
        pon = index // self.onts_per_pon
        olt, port_on_olt = divmod(pon, self.pons_per_olt)
        slot, port = divmod(port_on_olt, 8)
        return f"OLT-{olt + 1:04d}", f"0/{slot + 1}/{port}", index % self.onts_per_pon


def version_by_mix(mix: tuple[float, ...], draw: float) -> int:
    """Which software version a draw in [0, 1) lands on, by the (normalised) shares of ``mix``."""
    total = sum(mix) or 1.0
    reached = 0.0
    for index, part in enumerate(mix):
        reached += part / total
        if draw < reached:
            return index
    return len(mix) - 1


def make_device(plan: PopulationPlan, index: int, settings: DeviceSettings) -> SimDevice:
    profile = load_profile(plan.profile_of(index))
    identity = profile.identity
    serial_number = int(unit(plan.seed, profile.name, index, "sn") * 0xFFFFF) * 4096 + index % 4096
    if "d}" in identity.serial_format:
        serial_number %= 10**9
    oui = identity.ouis[int(unit(plan.seed, index, "oui") * len(identity.ouis))]
    version_index = version_by_mix(plan.firmware_mix, unit(plan.seed, index, "fw"))
    olt_id, pon_port, ont_id = plan.placement(index)
    return SimDevice(
        profile,
        settings,
        index,
        plan.seed,
        serial=identity.serial_format.format(serial_number),
        oui=oui,
        software_version=identity.software_versions[min(version_index, len(identity.software_versions) - 1)],
        cwmp_version=plan.version_of(index),
        olt_id=olt_id,
        pon_port=pon_port,
        ont_id=ont_id,
    )
