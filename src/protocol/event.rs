//! Events: every state change in the controller is one event with the next `rev`.

use serde::{Deserialize, Serialize};

use super::alert::{Alert, Silence};
use super::model::{AppSpec, Host, Instance, Operation, OperationEnded, Route, StepDelta};

/// What happened. The deploy steps keep the original system's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    AllocateRepositoryRequest,
    Upload,
    NewInstanceAndDeployWarRequest,
    PullImage,
    Download,
    Restart,
    HealthCheck,
    AddRouteRequest,
    RemoveRouteRequest,
    InstanceDeployed,
    OperationStarted,
    OperationSucceeded,
    OperationFailed,
    AppUpdated,
    HostJoined,
    HostUp,
    HostStale,
    HostLost,
    InstanceState,
    InstanceCrashed,
    InstanceRemoved,
    RouteAdded,
    RouteRemoved,
    RouteEnabled,
    RouteDisabled,
    /// The backend's instance has been gone or unhealthy past the TTL.
    RouteStale,
    /// A stale backend's instance is healthy again.
    RouteRestored,
    /// The router could not apply the route table (the config check failed).
    RouterError,
    /// A route's weight changed (`ctl.route.weight`).
    RouteWeightChanged,
    /// An operator command and its outcome, with who sent it (`audit` says what).
    Audit,
    /// An alert began firing (`Change::Alert`).
    AlertFiring,
    /// Someone took an alert on (`ctl alert ack`, `a` in the cockpit).
    AlertAcknowledged,
    /// An alert's condition no longer holds.
    AlertResolved,
    /// A subject's alerts silenced, or the silence lifted (`Change::Silence`).
    AlertSilenced,
    /// An operator's note for the timeline (`ctl note`, `n`); `audit` says who.
    Note,
    /// A host takes no new instance (`ctl host cordon`, or a drain's end).
    HostCordoned,
    /// A host takes new instances again.
    HostUncordoned,
    /// A drain started on a host, or moved one more of its instances.
    HostDraining,
    /// A kind from a newer controller; shown as-is, never an error.
    #[serde(other)]
    Unknown,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AllocateRepositoryRequest => "ALLOCATE_REPOSITORY_REQUEST",
            EventKind::Upload => "UPLOAD",
            EventKind::NewInstanceAndDeployWarRequest => "NEW_INSTANCE_AND_DEPLOY_WAR_REQUEST",
            EventKind::PullImage => "PULL_IMAGE",
            EventKind::Download => "DOWNLOAD",
            EventKind::Restart => "RESTART",
            EventKind::HealthCheck => "HEALTH_CHECK",
            EventKind::AddRouteRequest => "ADD_ROUTE_REQUEST",
            EventKind::RemoveRouteRequest => "REMOVE_ROUTE_REQUEST",
            EventKind::InstanceDeployed => "INSTANCE_DEPLOYED",
            EventKind::OperationStarted => "OPERATION_STARTED",
            EventKind::OperationSucceeded => "OPERATION_SUCCEEDED",
            EventKind::OperationFailed => "OPERATION_FAILED",
            EventKind::AppUpdated => "APP_UPDATED",
            EventKind::HostJoined => "HOST_JOINED",
            EventKind::HostUp => "HOST_UP",
            EventKind::HostStale => "HOST_STALE",
            EventKind::HostLost => "HOST_LOST",
            EventKind::InstanceState => "INSTANCE_STATE",
            EventKind::InstanceCrashed => "INSTANCE_CRASHED",
            EventKind::InstanceRemoved => "INSTANCE_REMOVED",
            EventKind::RouteAdded => "ROUTE_ADDED",
            EventKind::RouteRemoved => "ROUTE_REMOVED",
            EventKind::RouteEnabled => "ROUTE_ENABLED",
            EventKind::RouteDisabled => "ROUTE_DISABLED",
            EventKind::RouteStale => "ROUTE_STALE",
            EventKind::RouteRestored => "ROUTE_RESTORED",
            EventKind::RouterError => "ROUTER_ERROR",
            EventKind::RouteWeightChanged => "ROUTE_WEIGHT_CHANGED",
            EventKind::Audit => "AUDIT",
            EventKind::HostCordoned => "HOST_CORDONED",
            EventKind::HostUncordoned => "HOST_UNCORDONED",
            EventKind::HostDraining => "HOST_DRAINING",
            EventKind::AlertFiring => "ALERT_FIRING",
            EventKind::AlertAcknowledged => "ALERT_ACKNOWLEDGED",
            EventKind::AlertResolved => "ALERT_RESOLVED",
            EventKind::AlertSilenced => "ALERT_SILENCED",
            EventKind::Note => "NOTE",
            EventKind::Unknown => "UNKNOWN",
        }
    }

    /// The subject token: the kind in lower case, e.g. `instance_deployed`.
    pub fn subject_token(self) -> String {
        self.as_str().to_ascii_lowercase()
    }

    /// Events that mean something went wrong; the cockpit marks them.
    pub fn is_bad(self) -> bool {
        matches!(
            self,
            EventKind::OperationFailed
                | EventKind::InstanceCrashed
                | EventKind::HostLost
                | EventKind::HostStale
                | EventKind::RouteStale
                | EventKind::RouterError
                | EventKind::AlertFiring
        )
    }
}

/// The state change an event carries, so that a replica can follow the controller from
/// events alone. Read by `change_de.rs`, which avoids serde's buffering of tagged enums.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    Host(Host),
    App(AppSpec),
    AppRemoved {
        name: String,
    },
    Instance(Instance),
    InstanceRemoved {
        id: String,
    },
    Route(Route),
    RouteRemoved {
        app: String,
        backend: String,
    },
    /// A whole operation: only when it starts (no steps yet), or as a v1 controller sent
    /// every step.
    Operation(Operation),
    /// One step of a running operation; its size does not grow with the operation.
    OperationStep(StepDelta),
    /// How an operation ended; its steps are dropped from the state.
    OperationEnded(OperationEnded),
    /// An ended operation beyond the number kept (`FINISHED_OPERATIONS_KEPT`).
    OperationRemoved {
        id: String,
    },
    /// An alert as it now is (fired, acknowledged, resolved).
    Alert(Alert),
    /// A resolved alert beyond the number kept.
    AlertRemoved {
        id: String,
    },
    /// A silence set or extended.
    Silence(Silence),
    /// A silence lifted or run out; `subject` as text (`host/h1`).
    SilenceRemoved {
        subject: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub rev: u64,
    pub ts: u64,
    pub kind: EventKind,
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub instance: Option<String>,
    #[serde(default)]
    pub operation_id: Option<String>,
    pub message: String,
    /// The state changes this event applies, in order; may be empty for a pure notice.
    #[serde(default)]
    pub changes: Vec<Change>,
    /// On `AUDIT` events: the command, who sent it and how it ended. Written only when
    /// present, so every other event keeps its shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<Box<super::audit::AuditRecord>>,
}
