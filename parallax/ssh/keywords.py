"""Every ssh_config keyword OpenSSH 9.2 knows, with how parallax reads its value.

The list was taken from ``ssh`` itself (each candidate tried with
``ssh -G -o Keyword=x``: keywords it does not report as "Bad configuration
option").  Only the keywords parallax uses are typed; the others are
``IGNORED`` (accepted, value unchecked, unused).
"""

from __future__ import annotations

import enum

__all__ = ["ACCUMULATING", "CHOICES", "IN_PROCESS_OPTIONS", "KEYWORDS", "Kind"]


class Kind(enum.Enum):
    """How a keyword's arguments are read."""

    FLAG = "flag"  # yes/no/true/false -> bool
    STR = "str"  # one word
    INT = "int"
    PORT = "port"
    TIME = "time"  # seconds, OpenSSH time format
    CHOICE = "choice"  # one of CHOICES[keyword]
    ALGORITHMS = "algorithms"  # [+-^]name,name,...
    FILES = "files"  # up to 32 paths, or none
    IDENTITY = "identity"  # accumulates
    SENDENV = "sendenv"  # accumulates, -pattern removes
    SETENV = "setenv"  # NAME=VALUE words; the first line wins
    COMMAND = "command"  # the raw rest of the line
    JUMP = "jump"  # ProxyJump
    HOST = "host"
    MATCH = "match"
    INCLUDE = "include"
    IGNORED = "ignored"


_TYPED: dict[str, Kind] = {
    "host": Kind.HOST, "match": Kind.MATCH, "include": Kind.INCLUDE,
    "hostname": Kind.STR, "user": Kind.STR, "hostkeyalias": Kind.STR, "identityagent": Kind.STR,
    "controlpath": Kind.STR, "preferredauthentications": Kind.STR, "ignoreunknown": Kind.STR,
    "port": Kind.PORT,
    "identityfile": Kind.IDENTITY, "certificatefile": Kind.IDENTITY,
    "identitiesonly": Kind.FLAG, "batchmode": Kind.FLAG, "compression": Kind.FLAG,
    "pubkeyauthentication": Kind.FLAG, "passwordauthentication": Kind.FLAG,
    "kbdinteractiveauthentication": Kind.FLAG, "hashknownhosts": Kind.FLAG, "tcpkeepalive": Kind.FLAG,
    "numberofpasswordprompts": Kind.INT, "serveralivecountmax": Kind.INT, "connectionattempts": Kind.INT,
    "connecttimeout": Kind.TIME, "serveraliveinterval": Kind.TIME,
    "stricthostkeychecking": Kind.CHOICE, "loglevel": Kind.CHOICE, "addressfamily": Kind.CHOICE,
    "ciphers": Kind.ALGORITHMS, "macs": Kind.ALGORITHMS, "kexalgorithms": Kind.ALGORITHMS,
    "hostkeyalgorithms": Kind.ALGORITHMS,
    "userknownhostsfile": Kind.FILES, "globalknownhostsfile": Kind.FILES,
    "sendenv": Kind.SENDENV, "setenv": Kind.SETENV,
    "proxycommand": Kind.COMMAND, "proxyjump": Kind.JUMP, "knownhostscommand": Kind.COMMAND,
    "revokedhostkeys": Kind.STR, "bindaddress": Kind.STR, "canonicalizehostname": Kind.CHOICE,
}

#: Old names OpenSSH still accepts for a keyword.
_ALIASES = {
    "identityfile2": "identityfile", "challengeresponseauthentication": "kbdinteractiveauthentication",
    "keepalive": "tcpkeepalive", "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
    "hostbasedkeytypes": "hostbasedacceptedalgorithms",
    "protocolkeepalives": "serveraliveinterval", "setuptimeout": "connecttimeout",  # Debian's
}

_IGNORED = """
addkeystoagent afstokenpassing bindinterface canonicaldomains canonicalizefallbacklocal
canonicalizemaxdots canonicalizepermittedcnames casignaturealgorithms checkhostip
cipher clearallforwardings compressionlevel controlmaster controlpersist dsaauthentication dynamicforward
enableescapecommandline enablesshkeysign escapechar exitonforwardfailure fallbacktorsh fingerprinthash
forkafterauthentication forwardagent forwardx11 forwardx11timeout forwardx11trusted gatewayports
globalknownhostsfile2 gssapiauthentication gssapiclientidentity gssapidelegatecredentials gssapikexalgorithms
gssapikeyexchange gssapirenewalforcesrekey gssapiserveridentity gssapitrustdns hostbasedacceptedalgorithms
hostbasedauthentication ipqos kbdinteractivedevices kerberosauthentication kerberostgtpassing
localcommand localforward logverbose nohostauthenticationforlocalhost permitlocalcommand
permitremoteopen pkcs11provider protocol proxyusefdpass pubkeyacceptedalgorithms
rekeylimit remotecommand remoteforward requesttty requiredrsasize rhostsauthentication
rhostsrsaauthentication securitykeyprovider sessiontype skeyauthentication smartcarddevice
stdinnull streamlocalbindmask streamlocalbindunlink syslogfacility tisauthentication tunnel tunneldevice
updatehostkeys useblacklistedkeys useprivilegedport userknownhostsfile2 useroaming usersh verifyhostkeydns
visualhostkey xauthlocation
"""

#: lower-case keyword -> (the key the value is stored under, how it is read)
KEYWORDS: dict[str, tuple[str, Kind]] = {k: (k, kind) for k, kind in _TYPED.items()}
KEYWORDS.update({k: (k, Kind.IGNORED) for k in _IGNORED.split()})
KEYWORDS.update({old: KEYWORDS[new] for old, new in _ALIASES.items()})

#: Accepted spellings (lower case) -> normalised value, as OpenSSH's multistate tables.
CHOICES: dict[str, dict[str, str]] = {
    "stricthostkeychecking": {"yes": "yes", "true": "yes", "no": "no", "false": "no", "off": "no",
                              "ask": "ask", "accept-new": "accept-new"},
    "loglevel": {"quiet": "QUIET", "fatal": "FATAL", "error": "ERROR", "info": "INFO", "verbose": "VERBOSE",
                 "debug": "DEBUG", "debug1": "DEBUG", "debug2": "DEBUG2", "debug3": "DEBUG3"},
    "addressfamily": {"any": "any", "inet": "inet", "inet6": "inet6"},
    "canonicalizehostname": {"yes": "yes", "true": "yes", "no": "no", "false": "no", "always": "always"},
}

#: Keywords whose values add up instead of the first one winning.
ACCUMULATING = frozenset({"identityfile", "certificatefile", "sendenv"})

#: The ssh options (lower case) every in-process backend (paramiko, asyncssh) honours in ``ssh_options``:
#: one set, so that a call accepted by one is accepted by the other.  Each maps to a
#: :class:`~parallax.ssh.hostconfig.HostConfig` field the backends apply; ``BatchMode`` is accepted
#: because they never prompt, ``LogLevel`` sets the library's log threshold.
IN_PROCESS_OPTIONS = frozenset({
    "addressfamily", "batchmode", "ciphers", "compression", "connecttimeout", "globalknownhostsfile",
    "hostkeyalgorithms", "hostkeyalias", "hostname", "identitiesonly", "identityagent", "identityfile",
    "kbdinteractiveauthentication", "kexalgorithms", "loglevel", "macs", "numberofpasswordprompts",
    "passwordauthentication", "port", "preferredauthentications", "proxyjump", "pubkeyauthentication",
    "sendenv", "serveralivecountmax", "serveraliveinterval", "setenv", "stricthostkeychecking",
    "tcpkeepalive", "user", "userknownhostsfile",
})
