"""Shared threat intelligence: STIX 2.1 builders, a TAXII 2.1 server, and a push/pull client.

The server lives in :mod:`mamori.intel.taxii`; objects, members and the audit trail are kept in
:mod:`mamori.store`.
"""

from mamori.intel.client import PushResult, TaxiiClient
from mamori.intel.stix import (
    OAT_CATALOG,
    TLP_AMBER,
    TLP_AMBER_STRICT,
    TLP_CLEAR,
    TLP_GREEN,
    TLP_LEVELS,
    TLP_MARKINGS,
    TLP_RED,
    asn_indicator,
    attack_pattern,
    campaign,
    domain_indicator,
    identity,
    indicator,
    ip_indicator,
    merge,
    parse_object,
    relationship,
    serialize,
    sighting,
    tlp_of,
    tls_fingerprint_indicator,
    url_indicator,
    user_agent_indicator,
    validate_object,
)

__all__ = [
    "OAT_CATALOG",
    "TLP_AMBER",
    "TLP_AMBER_STRICT",
    "TLP_CLEAR",
    "TLP_GREEN",
    "TLP_LEVELS",
    "TLP_MARKINGS",
    "TLP_RED",
    "PushResult",
    "TaxiiClient",
    "asn_indicator",
    "attack_pattern",
    "campaign",
    "domain_indicator",
    "identity",
    "indicator",
    "ip_indicator",
    "merge",
    "parse_object",
    "relationship",
    "serialize",
    "sighting",
    "tlp_of",
    "tls_fingerprint_indicator",
    "url_indicator",
    "user_agent_indicator",
    "validate_object",
]
