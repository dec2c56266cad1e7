//! Connecting an OAuth MCP server: "Connect" sends the admin's browser to the server's
//! authorization server (discovered, Switchboard registered there, PKCE), which sends it back
//! to `/tools/mcp/oauth/callback`; the tokens are kept on the server and never shown.
//! "Disconnect" drops them.

use super::layout::{self, badge, time};
use super::{redirect_with_flash, Dash, DashError, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use std::collections::HashMap;
use switchboard_domain::ids::McpServerId;
use switchboard_domain::mcp_server::McpServer;
use switchboard_domain::Timestamp;
use switchboard_tools::mcp_oauth::{self, CallbackError};

/// Where authorization servers send the admin back.
pub(crate) const CALLBACK: &str = "/tools/mcp/oauth/callback";

/// The OAuth card of an `oauth` server's page.
pub(crate) fn card(dash: &Dash, s: &McpServer) -> Markup {
    let Some(o) = &s.oauth else {
        return html! {};
    };
    let connected = o.state == "connected";
    html! {
        section.card #mcp-oauth {
            h2 { "OAuth" }
            p #oauth-state {
                @if connected { (badge("connected")) } @else { (badge("not connected")) }
                @if let Some(at) = o.connected_at { " " small.muted { "since " (time(at)) } }
            }
            @if let Some(at) = o.access_expires_at {
                p.muted { "The access token expires " (time(at)) "; it is refreshed before then." }
            }
            @if !connected {
                p.muted { "Agents cannot use this server's tools until an admin connects it: you sign in at the server's authorization server and approve Switchboard." }
            }
            @if dash.can_manage() {
                div.row {
                    form.inline method="post" action={ "/tools/mcp/" (s.id) "/oauth/connect" } {
                        (layout::csrf(dash))
                        button.primary.small type="submit" #oauth-connect { @if connected { "Reconnect" } @else { "Connect" } }
                    }
                    @if connected {
                        (layout::action_button(dash, &format!("/tools/mcp/{}/oauth/disconnect", s.id), "Disconnect", Some("Drop this server's tokens? Agents lose its tools until it is connected again.")))
                    }
                }
            }
        }
    }
}

fn server_id(raw: &str) -> Result<McpServerId, DashError> {
    McpServerId::parse(raw).ok_or(DashError::NotFound)
}

/// `POST /tools/mcp/{id}/oauth/connect` (admins and operators): to the authorization server.
pub async fn connect(
    State(st): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let id = server_id(&id)?;
    Fields::managing(&dash, &body)?;
    let s = st.store.get_mcp_server(&dash.org, &id).await?;
    let redirect_uri = format!("{}{CALLBACK}", crate::oauth::base_url(&st, &headers));
    match mcp_oauth::start(
        &st.store,
        &dash.org,
        &s,
        &dash.session.user.id,
        &redirect_uri,
        st.tools_allow_private,
    )
    .await
    {
        Ok(url) => Ok(Redirect::to(&url).into_response()),
        Err(why) => {
            tracing::warn!(org_id = %dash.org, server = %s.name, reason = %why, "cannot start the MCP server's authorization");
            Ok(redirect_with_flash(
                &format!("/tools/mcp/{id}"),
                &format!("Cannot connect: {why}"),
            ))
        }
    }
}

/// `GET /tools/mcp/oauth/callback`: the authorization server's answer.
pub async fn callback(
    State(st): State<AppState>,
    dash: Dash,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, DashError> {
    dash.require_manage()?;
    let done = mcp_oauth::complete(
        &st.store,
        &dash.org,
        &dash.session.user.id,
        &params,
        st.tools_allow_private,
    )
    .await;
    Ok(match done {
        Ok(id) => redirect_with_flash(&format!("/tools/mcp/{id}"), "Connected"),
        Err(CallbackError::Failed(id, why)) => {
            tracing::warn!(org_id = %dash.org, server_id = %id, reason = %why, "MCP server authorization failed");
            redirect_with_flash(
                &format!("/tools/mcp/{id}"),
                &format!("Not connected: {why}"),
            )
        }
        Err(CallbackError::UnknownFlow) => redirect_with_flash(
            "/tools",
            "This authorization expired or was already used (or belongs to another organization); connect the server again.",
        ),
        Err(CallbackError::OtherUser) => redirect_with_flash(
            "/tools",
            "This authorization was started by another user; connect the server again yourself.",
        ),
    })
}

/// `POST /tools/mcp/{id}/oauth/disconnect`: drops the tokens.
pub async fn disconnect(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let id = server_id(&id)?;
    Fields::managing(&dash, &body)?;
    st.store.get_mcp_server(&dash.org, &id).await?;
    st.store
        .disconnect_mcp_oauth(&dash.org, &id, None, None, Timestamp::now())
        .await?;
    tracing::info!(org_id = %dash.org, server_id = %id, "MCP server disconnected");
    Ok(redirect_with_flash(
        &format!("/tools/mcp/{id}"),
        "Disconnected",
    ))
}
