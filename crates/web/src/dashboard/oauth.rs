//! `/oauth/authorize`: an MCP client asks for access to an organization; a signed-in admin
//! sees which application, where it will be sent back, and for which organization, and allows
//! or denies. Requests that cannot be trusted to redirect (an unknown client, a redirect URI
//! it did not register) are answered here with an error page, never redirected.

use super::layout;
use super::{Dash, DashError, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use std::collections::HashMap;
use switchboard_domain::auth::hash_api_key;
use switchboard_domain::ids::random_token;
use switchboard_domain::oauth::{challenge_shaped, OAuthClient, CODE_SECONDS, SCOPE};
use switchboard_domain::Timestamp;
use switchboard_store::{OAuthCode, OAuthGrant};

/// The authorization request's parameters, checked.
struct AuthRequest {
    client: OAuthClient,
    redirect_uri: String,
    state: Option<String>,
    challenge: String,
    scope: String,
    resource: String,
}

/// Where the outcome goes: an error page (cannot redirect) or back to the client.
enum Refusal {
    Page(String),
    Redirect(String, &'static str, String),
}

fn redirect_to(uri: &str, pairs: &[(&str, &str)]) -> Response {
    match url::Url::parse(uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            Redirect::to(u.as_str()).into_response()
        }
        Err(_) => (StatusCode::BAD_REQUEST, "invalid redirect URI").into_response(),
    }
}

async fn check(
    st: &AppState,
    headers: &HeaderMap,
    p: &HashMap<String, String>,
) -> Result<AuthRequest, Refusal> {
    let id = p.get("client_id").map(String::as_str).unwrap_or_default();
    let client = match st.store.oauth_client(id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(Refusal::Page("This application is not registered.".into())),
        Err(e) => return Err(Refusal::Page(format!("The server failed: {e}"))),
    };
    let redirect_uri = match p.get("redirect_uri") {
        Some(u) if client.redirect_uris.contains(u) => u.clone(),
        Some(_) => {
            return Err(Refusal::Page(
                "The redirect URI is not one this application registered.".into(),
            ))
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(Refusal::Page("redirect_uri is required.".into())),
    };
    let state = p.get("state").cloned();
    let back =
        |error: &'static str, d: &str| Refusal::Redirect(redirect_uri.clone(), error, d.to_owned());
    if p.get("response_type").map(String::as_str) != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let challenge = p.get("code_challenge").cloned().unwrap_or_default();
    if p.get("code_challenge_method").map(String::as_str) != Some("S256")
        || !challenge_shaped(&challenge)
    {
        return Err(back(
            "invalid_request",
            "PKCE is required: code_challenge with code_challenge_method=S256",
        ));
    }
    let scope = p.get("scope").cloned().unwrap_or_else(|| SCOPE.into());
    if scope.split(' ').any(|s| !s.is_empty() && s != SCOPE) {
        return Err(back("invalid_scope", "the only scope is mcp"));
    }
    let base = crate::oauth::base_url(st, headers);
    let resource = crate::oauth::resource(&base);
    if let Some(r) = p.get("resource") {
        if r.trim_end_matches('/') != resource && r.trim_end_matches('/') != base {
            return Err(back(
                "invalid_target",
                "this server issues tokens for its /mcp only",
            ));
        }
    }
    Ok(AuthRequest {
        client,
        redirect_uri,
        state,
        challenge,
        scope: SCOPE.into(),
        resource,
    })
}

fn refuse(r: Refusal, state: Option<&str>) -> Response {
    match r {
        Refusal::Page(m) => (
            StatusCode::BAD_REQUEST,
            html! { h1 { "Cannot authorize" } p #oauth-error { (m) } }.into_string(),
        )
            .into_response(),
        Refusal::Redirect(uri, error, d) => {
            let mut pairs = vec![("error", error), ("error_description", d.as_str())];
            if let Some(s) = state {
                pairs.push(("state", s));
            }
            redirect_to(&uri, &pairs)
        }
    }
}

/// `GET /oauth/authorize`: the consent page (admins; signing in first when needed).
pub async fn consent(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
    dash: Dash,
) -> Result<Response, DashError> {
    let req = match check(&st, &headers, &p).await {
        Ok(r) => r,
        Err(r) => return Ok(refuse(r, p.get("state").map(String::as_str))),
    };
    dash.require_manage()?;
    let host = url::Url::parse(&req.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let body = html! {
        section.card #oauth-consent {
            h2 { "Allow " strong #oauth-client { (req.client.name) } "?" }
            p { "It will use Switchboard's tools for " strong #oauth-org { (dash.session.org_name) } ": read and change agents, contacts and numbers, read calls and conversations with their transcripts, and text or call contacts." }
            p.muted { "You will be sent back to " code { (host) } ". Access lasts until it is revoked; it never reaches another organization." }
            form method="post" action="/oauth/authorize" #oauth-form {
                (layout::csrf(&dash))
                @for (k, v) in &p { input type="hidden" name=(k) value=(v); }
                div.row {
                    button.primary type="submit" name="decision" value="allow" #oauth-allow { "Allow" }
                    button type="submit" name="decision" value="deny" #oauth-deny { "Deny" }
                }
            }
        }
    };
    Ok(
        layout::render(&st, &dash, "", "Connect an application", None, body)
            .await?
            .into_response(),
    )
}

/// `POST /oauth/authorize`: the admin's decision; redirects back to the client with a code
/// (or `access_denied`).
pub async fn decide(
    State(st): State<AppState>,
    headers: HeaderMap,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let p: HashMap<String, String> = url::form_urlencoded::parse(&body)
        .into_owned()
        .filter(|(k, _)| k != "_csrf" && k != "decision")
        .collect();
    let req = match check(&st, &headers, &p).await {
        Ok(r) => r,
        Err(r) => return Ok(refuse(r, p.get("state").map(String::as_str))),
    };
    let base = crate::oauth::base_url(&st, &headers);
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if f.get("decision") == Some("allow") {
        let code = format!("sbac_{}", random_token(40));
        let now = st.clock.now();
        let grant = OAuthCode {
            grant: OAuthGrant {
                client_id: req.client.id.clone(),
                org_id: dash.org.clone(),
                user_id: dash.session.user.id.to_string(),
                scope: req.scope.clone(),
                resource: req.resource.clone(),
                family_id: String::new(),
            },
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.challenge.clone(),
        };
        st.store
            .create_oauth_code(
                &hash_api_key(&code),
                &grant,
                Timestamp::from_millis(now.millis() + CODE_SECONDS * 1000),
            )
            .await?;
        tracing::info!(client_id = %req.client.id, org_id = %dash.org, user_id = %dash.session.user.id, "OAuth access granted");
        pairs.push(("code", code));
    } else {
        tracing::info!(client_id = %req.client.id, org_id = %dash.org, "OAuth access denied");
        pairs.push(("error", "access_denied".into()));
    }
    if let Some(s) = &req.state {
        pairs.push(("state", s.clone()));
    }
    pairs.push(("iss", base));
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(redirect_to(&req.redirect_uri, &borrowed))
}
