"""Privacy-preserving cross-bank campaign analytics: keyed-hash sketches, secure sum, campaign indicators.

Members sketch keyed hashes (:class:`ConsortiumKey`, which the coordinator does not hold) of the sources and
targets of failed logins per window (:class:`CountMinSketch`), the coordinator secure-sums the sketches
(:func:`secure_sum`), members resolve the items seen at ``min_banks`` or more banks (:func:`run_analytics`)
into STIX campaign indicators (:func:`campaign_objects`) published over TAXII (:func:`publish_campaign`), which the
next period's detectors use as a feature (:func:`add_campaign_feature`, measured by :func:`evaluate_closed_loop`).
See ``docs/cross-bank.md``.
"""

from mamori.analytics.campaigns import campaign_objects, confidence_of, publish_campaign
from mamori.analytics.config import SKETCH_KINDS, AnalyticsConfig
from mamori.analytics.engine import AnalyticsResult, Finding, WindowRound, dp_sigma, run_analytics
from mamori.analytics.items import ITEM_SCHEMA, extract_items
from mamori.analytics.keys import ConsortiumKey
from mamori.analytics.loop import (
    CAMPAIGN_FEATURE,
    ClosedLoopReport,
    DetectionFigures,
    add_campaign_feature,
    evaluate_closed_loop,
    indicator_hits,
)
from mamori.analytics.secure_sum import MaskingMember, SecureSumCoordinator, secure_sum
from mamori.analytics.sketch import CountMinSketch

__all__ = [
    "CAMPAIGN_FEATURE",
    "ITEM_SCHEMA",
    "SKETCH_KINDS",
    "AnalyticsConfig",
    "AnalyticsResult",
    "ClosedLoopReport",
    "ConsortiumKey",
    "CountMinSketch",
    "DetectionFigures",
    "Finding",
    "MaskingMember",
    "SecureSumCoordinator",
    "WindowRound",
    "add_campaign_feature",
    "campaign_objects",
    "confidence_of",
    "dp_sigma",
    "evaluate_closed_loop",
    "extract_items",
    "indicator_hits",
    "publish_campaign",
    "run_analytics",
    "secure_sum",
]
