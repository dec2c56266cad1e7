//! The REST API's routes and its OpenAPI document, built from the same registrations so a
//! route cannot exist without its documentation.

use crate::{api, error, AppState};
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard API", version = "1", description = "Multi-tenant AI phone and messaging agents. Authenticate with `Authorization: Bearer <key>`; errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`."),
    modifiers(&SecurityAddon),
    components(schemas(error::ErrorBody, api::webhooks::EventEnvelope)),
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer =
            || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("api_key", bearer());
        components.add_security_scheme("operator_key", bearer());
    }
}

/// The API routes and their OpenAPI document, built from the same registrations so that a
/// route cannot exist without its documentation.
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use api::*;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(orgs::create_org, orgs::list_orgs))
        .routes(routes!(orgs::get_org))
        .routes(routes!(orgs::disable_org))
        .routes(routes!(orgs::enable_org))
        .routes(routes!(orgs::create_org_api_key))
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(api_keys::revoke_api_key))
        .routes(routes!(agents::create_agent, agents::list_agents))
        .routes(routes!(
            agents::get_agent,
            agents::update_agent,
            agents::delete_agent
        ))
        .routes(routes!(numbers::create_number, numbers::list_numbers))
        .routes(routes!(
            numbers::get_number,
            numbers::update_number,
            numbers::delete_number
        ))
        .routes(routes!(numbers::verify_number))
        .routes(routes!(
            appointments::list_appointments,
            appointments::create_appointment
        ))
        .routes(routes!(
            appointments::get_appointment,
            appointments::update_appointment,
            appointments::cancel_appointment
        ))
        .routes(routes!(
            appointments::get_feed,
            appointments::create_feed,
            appointments::revoke_feed
        ))
        .routes(routes!(contacts::create_contact, contacts::list_contacts))
        .routes(routes!(
            contacts::get_contact,
            contacts::update_contact,
            contacts::delete_contact
        ))
        .routes(routes!(
            conversations::list_conversations,
            conversations::create_conversation
        ))
        .routes(routes!(conversations::get_conversation))
        .routes(routes!(
            conversations::list_messages,
            conversations::send_message
        ))
        .routes(routes!(chat::chat))
        .routes(routes!(chat::event_stream))
        .routes(routes!(calls::list_calls, outbound::place_call))
        .routes(routes!(outbound::cancel_call))
        .routes(routes!(
            call_actions::create_action,
            call_actions::list_actions
        ))
        .routes(routes!(call_actions::get_action))
        .routes(routes!(
            scheduled::schedule_message,
            scheduled::list_scheduled
        ))
        .routes(routes!(scheduled::get_scheduled))
        .routes(routes!(scheduled::cancel_scheduled))
        .routes(routes!(calls::get_call))
        .routes(routes!(
            recordings::get_recording,
            recordings::delete_recording
        ))
        .routes(routes!(
            campaigns::create_campaign,
            campaigns::list_campaigns
        ))
        .routes(routes!(campaigns::get_campaign))
        .routes(routes!(
            campaigns::add_recipients,
            campaigns::list_recipients
        ))
        .routes(routes!(campaigns::start_campaign))
        .routes(routes!(campaigns::pause_campaign))
        .routes(routes!(campaigns::resume_campaign))
        .routes(routes!(campaigns::cancel_campaign))
        .routes(routes!(tool_invocations::list_tool_invocations))
        .routes(routes!(custom_tools::create_tool, custom_tools::list_tools))
        .routes(routes!(
            custom_tools::get_tool,
            custom_tools::update_tool,
            custom_tools::delete_tool
        ))
        .routes(routes!(custom_tools::rotate_tool_secret))
        .routes(routes!(knowledge::list_sources, knowledge::create_source))
        .routes(routes!(knowledge::upload_source))
        .routes(routes!(
            knowledge::get_source,
            knowledge::update_source,
            knowledge::delete_source
        ))
        .routes(routes!(knowledge::search))
        .routes(routes!(assistant::send))
        .routes(routes!(assistant::confirm_action))
        .routes(routes!(assistant::cancel_action))
        .routes(routes!(assistant::list_sessions))
        .routes(routes!(assistant::get_session))
        .routes(routes!(custom_tools::test_tool))
        .routes(routes!(
            mcp_servers::create_server,
            mcp_servers::list_servers
        ))
        .routes(routes!(
            mcp_servers::get_server,
            mcp_servers::update_server,
            mcp_servers::delete_server
        ))
        .routes(routes!(mcp_servers::server_tools))
        .routes(routes!(mcp_servers::disconnect_server))
        .routes(routes!(webhooks::analyze_call))
        .routes(routes!(webhooks::create_endpoint, webhooks::list_endpoints))
        .routes(routes!(
            webhooks::get_endpoint,
            webhooks::update_endpoint,
            webhooks::delete_endpoint
        ))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::get_delivery))
        .routes(routes!(webhooks::resend_delivery))
        .routes(routes!(webhooks::list_events))
        .routes(routes!(webhooks::event_types))
        .routes(routes!(webhooks::list_emails))
        .routes(routes!(settings::get_settings, settings::put_settings))
        .routes(routes!(setup::get_setup))
        .routes(routes!(analytics::get_analytics))
        .routes(routes!(analytics::export_calls))
        .routes(routes!(analytics::export_conversations))
        .routes(routes!(analytics::export_appointments))
        .routes(routes!(setup::check_twilio))
        .routes(routes!(setup::list_incoming))
        .routes(routes!(setup::import_incoming))
        .routes(routes!(instance::get_instance))
        .routes(routes!(instance::drain_instance))
        .split_for_parts()
}
