//! Operator endpoints for the instance that answers: its state, and starting a drain (the
//! same as SIGTERM: no new calls, live calls finish, then the process exits).

use crate::error::ErrorBody;
use crate::extract::OperatorAuth;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use std::sync::atomic::Ordering;

/// The instance that answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstanceState {
    /// Its id in the instance registry (`ins_...`).
    pub id: String,
    /// `serving` or `draining`.
    pub status: &'static str,
    /// Calls with a live session on this instance.
    pub live_calls: i64,
    /// Calls answered whose media stream has not connected yet.
    pub connecting_calls: usize,
}

fn state(st: &AppState) -> InstanceState {
    InstanceState {
        id: st.lifecycle.id().to_owned(),
        status: if st.lifecycle.is_draining() {
            "draining"
        } else {
            "serving"
        },
        live_calls: st.voice.stats.active.load(Ordering::Relaxed).max(0),
        connecting_calls: st.voice.pending.waiting(),
    }
}

/// The state of the instance that answers this request.
#[utoipa::path(get, path = "/api/v1/instance", tag = "operations",
    responses((status = 200, body = InstanceState), (status = 403, body = ErrorBody)),
    security(("operator_key" = [])))]
pub async fn get_instance(_: OperatorAuth, State(st): State<AppState>) -> Json<InstanceState> {
    Json(state(&st))
}

/// Drain the instance that answers this request: `/readyz` turns 503, new calls go to other
/// instances (or hear a polite refusal when there are none), live calls go on until they end
/// or `SWITCHBOARD_DRAIN_TIMEOUT_SECONDS` passes, then the process exits. Calling it again
/// changes nothing. Behind a load balancer, send it to the instance itself.
#[utoipa::path(post, path = "/api/v1/instance/drain", tag = "operations",
    responses((status = 202, body = InstanceState), (status = 403, body = ErrorBody)),
    security(("operator_key" = [])))]
pub async fn drain_instance(
    _: OperatorAuth,
    State(st): State<AppState>,
) -> (StatusCode, Json<InstanceState>) {
    if st.lifecycle.begin_drain() {
        tracing::info!("drain requested through the API");
    }
    (StatusCode::ACCEPTED, Json(state(&st)))
}
