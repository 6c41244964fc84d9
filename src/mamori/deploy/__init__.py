"""Running a consortium on Flower's deployment engine: PKI, configuration and process control.

``mamori pki`` makes the consortium CA, the coordinator's TLS certificate and members' node keys;
``mamori coordinator`` runs the Flower SuperLink, the TAXII server, the model-registry API and the
dashboard, and starts federated runs (:class:`Coordinator`); ``mamori node`` runs a member's Flower
SuperNode with mamori's ClientApp (:mod:`mamori.deploy.flowerapp`, served warm by
:mod:`mamori.deploy.worker`), pulls published global models and pushes sightings (:class:`MemberSync`).
"""

from mamori.deploy.config import (
    ConsortiumConfig,
    CoordinatorSection,
    DashboardSection,
    FederationSection,
    NodeConfig,
    RegistrySection,
    ScheduleSection,
    TaxiiSection,
    load_consortium_config,
    load_node_config,
)
from mamori.deploy.member import (
    MemberSync,
    PullResult,
    pull_global_model,
    push_sightings,
    read_api_key,
    seed_local_registry,
)
from mamori.deploy.pki import (
    MemberKey,
    PKIPaths,
    init_ca,
    issue_node_key,
    issue_server_cert,
    key_fingerprint,
    list_members,
    load_members,
    register_node_key,
    revoke_node,
)
from mamori.deploy.registry_api import create_registry_app
from mamori.deploy.runtime import (
    RunOutcome,
    audit_refusals,
    completed_rounds,
    flower_env,
    node_command,
    run_federated,
    start_node,
    start_superlink,
    stop_flwr_clients,
    stop_process,
    superlink_command,
    sync_members,
    wait_for_port,
    write_app_dir,
)
from mamori.deploy.services import Coordinator, HttpService, Schedule

__all__ = [
    "ConsortiumConfig",
    "Coordinator",
    "CoordinatorSection",
    "DashboardSection",
    "FederationSection",
    "HttpService",
    "MemberKey",
    "MemberSync",
    "NodeConfig",
    "PKIPaths",
    "PullResult",
    "RegistrySection",
    "RunOutcome",
    "Schedule",
    "ScheduleSection",
    "TaxiiSection",
    "audit_refusals",
    "completed_rounds",
    "create_registry_app",
    "flower_env",
    "init_ca",
    "issue_node_key",
    "issue_server_cert",
    "key_fingerprint",
    "list_members",
    "load_consortium_config",
    "load_members",
    "load_node_config",
    "node_command",
    "pull_global_model",
    "push_sightings",
    "read_api_key",
    "register_node_key",
    "revoke_node",
    "run_federated",
    "seed_local_registry",
    "start_node",
    "start_superlink",
    "stop_flwr_clients",
    "stop_process",
    "superlink_command",
    "sync_members",
    "wait_for_port",
    "write_app_dir",
]
