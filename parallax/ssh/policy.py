"""The host-key policy table, once: what each policy does and what each ``StrictHostKeyChecking`` means.

OpenSSH's ``man ssh_config`` (StrictHostKeyChecking), encoded as is:

* ``yes`` (also ``true``): never add keys automatically; refuse unknown and
  changed keys.  ``ask`` (the default) would prompt; parallax never prompts,
  so it refuses as ``yes`` does (what ssh does with ``BatchMode yes``).
* ``accept-new``: add new host keys to the user known_hosts file; refuse
  changed keys.
* ``no`` (also ``off``, ``false``): add new host keys to the user known_hosts
  file *and* allow connections to hosts whose key changed, "subject to some
  restrictions": OpenSSH then disables password and keyboard-interactive
  authentication (and agent/X11/port forwarding) and does not record the
  changed key.  That is parallax's ``no`` policy.

``off`` as a parallax ``host_key_policy`` (not a StrictHostKeyChecking
value) is parallax's own: check nothing and record nothing.  A key marked
``@revoked`` is refused by every policy that checks keys.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType
from collections.abc import Mapping

__all__ = ["POLICY_RULES", "STRICT_HOST_KEY_CHECKING", "HostKeyPolicy", "PolicyRules", "policy_for"]


class HostKeyPolicy(str, enum.Enum):
    """What to do with an unknown or changed host key."""

    STRICT = "strict"
    ACCEPT_NEW = "accept-new"
    NO = "no"  # OpenSSH's StrictHostKeyChecking=no/off
    OFF = "off"  # parallax's: check nothing, record nothing

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class PolicyRules:
    """The behaviour of one policy."""

    check: bool  # look keys up at all
    accept_unknown: bool
    record_unknown: bool
    accept_changed: bool
    #: when a changed key is accepted: no password or keyboard-interactive auth (OpenSSH's restriction)
    changed_disables_password: bool


POLICY_RULES: Mapping[HostKeyPolicy, PolicyRules] = MappingProxyType({
    HostKeyPolicy.STRICT: PolicyRules(True, False, False, False, False),
    HostKeyPolicy.ACCEPT_NEW: PolicyRules(True, True, True, False, False),
    HostKeyPolicy.NO: PolicyRules(True, True, True, True, True),
    HostKeyPolicy.OFF: PolicyRules(False, True, False, True, False),
})

#: StrictHostKeyChecking value (as normalised by the config parser: yes, ask, accept-new, no) -> policy.
STRICT_HOST_KEY_CHECKING: Mapping[str, HostKeyPolicy] = MappingProxyType({
    "yes": HostKeyPolicy.STRICT,
    "ask": HostKeyPolicy.STRICT,
    "accept-new": HostKeyPolicy.ACCEPT_NEW,
    "no": HostKeyPolicy.NO,
})

_SPELLINGS = {"yes": "yes", "true": "yes", "ask": "ask", "accept-new": "accept-new",
              "no": "no", "false": "no", "off": "no"}


def policy_for(value: str | HostKeyPolicy, *, parallax_name: bool = False) -> HostKeyPolicy:
    """The policy for a StrictHostKeyChecking value, or (``parallax_name``) a parallax policy name.

    ``policy_for("off")`` is OpenSSH's ``off`` (= ``no``); ``policy_for("off",
    parallax_name=True)`` is parallax's ``off``.  Raises ``ValueError``.
    """
    if isinstance(value, HostKeyPolicy):
        return value
    low = value.strip().lower()
    if parallax_name:
        try:
            return HostKeyPolicy(low)
        except ValueError:
            raise ValueError(f"host_key_policy {value!r}: expected strict, accept-new, no or off") from None
    if low not in _SPELLINGS:
        raise ValueError(f"StrictHostKeyChecking {value!r}: expected yes, ask, accept-new, no or off")
    return STRICT_HOST_KEY_CHECKING[_SPELLINGS[low]]
