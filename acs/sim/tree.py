"""A device's parameter tree: the profile's shared base plus this device's own changes.

Copy-on-write: 10,000 devices of one profile share one `BaseTree`; each device stores only the
values it changed, the instances it added and the base objects it deleted. Nothing is allocated
until the first change, so an untouched device costs a few pointers.
"""

from __future__ import annotations

from acs.sim.profile import BaseTree, Profile, natural_key


class ParameterTree:
    __slots__ = ("_added", "_base", "_deleted", "_next_instance", "_overrides", "_profile")

    def __init__(self, profile: Profile) -> None:
        self._profile = profile
        self._base: BaseTree = profile.base
        self._overrides: dict[str, str] | None = None  # changed values and added names
        self._added: set[str] | None = None  # names that exist only on this device
        self._deleted: set[str] | None = None  # deleted base object paths
        self._next_instance: dict[str, int] | None = None

    # -- reading -------------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        if self._added is not None and name in self._added:
            return True
        in_base = name in self._base.position
        return in_base and not self._is_deleted(name)

    def stored_value(self, name: str) -> str | None:
        """The value set on this device, else the factory value; None for unknown names."""
        if self._overrides is not None and name in self._overrides:
            return self._overrides[name]
        if self._added is not None and name in self._added:
            spec = self._profile.spec(name)  # an added instance keeps its defaults until set
            return spec.default if spec else ""
        return self._base.values.get(name) if self.exists(name) else None

    def is_overridden(self, name: str) -> bool:
        return self._overrides is not None and name in self._overrides

    def subtree(self, path: str) -> list[str]:
        """`path` (an object) and all names below it that exist on this device, in order."""
        names = [n for n in self._base.subtree(path) if not self._is_deleted(n)]
        if self._added:
            extra = sorted((n for n in self._added if n.startswith(path)), key=natural_key)
            names = sorted({*names, *extra}, key=natural_key) if extra else names
        return names

    def instances(self, table: str) -> list[int]:
        """Instance numbers present in a table such as "...Hosts.Host."."""
        depth = table.count(".")
        numbers = []
        for name in self.subtree(table):
            number = name.split(".")[depth] if name.count(".") == depth + 1 else ""
            if name.endswith(".") and number.isdigit():
                numbers.append(int(number))
        return numbers

    def _is_deleted(self, name: str) -> bool:
        return self._deleted is not None and any(name.startswith(d) for d in self._deleted)

    # -- writing -------------------------------------------------------------------------------

    def set(self, name: str, value: str) -> None:
        if self._overrides is None:
            self._overrides = {}
        self._overrides[name] = value

    def add_instance(self, table: str, limit: int) -> int | None:
        """Create the next instance of `table` with its default children; None when full."""
        existing = self.instances(table)
        if len(existing) >= limit:
            return None
        if self._next_instance is None:
            self._next_instance = {}
        number = max(self._next_instance.get(table, 1), max(existing, default=0) + 1)
        self._next_instance[table] = number + 1  # TR-069 3.6.1: numbers are not reused
        instance = f"{table}{number}."
        if self._added is None:
            self._added = set()
        self._added.add(instance)
        self._added.update(instance + relative for relative, _ in self._profile.child_template(table))
        return number

    def delete(self, path: str) -> None:
        if self._added is not None:
            gone = {n for n in self._added if n.startswith(path)}
            self._added -= gone
            if self._overrides is not None:
                for name in gone:
                    self._overrides.pop(name, None)
        if path in self._base.position:
            if self._deleted is None:
                self._deleted = set()
            self._deleted.add(path)

    def reset(self) -> None:
        """Factory reset: back to the shared base."""
        self._overrides = self._added = self._deleted = self._next_instance = None

    def override_count(self) -> int:
        return len(self._overrides or ()) + len(self._added or ())
