//! Every dashboard route, in one table.

use super::*;
use axum::routing::{get, post};
use axum::Router;

/// The dashboard's routes (merged into the main router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route(
            "/forgot-password",
            get(links::forgot_page).post(links::forgot),
        )
        .route(
            "/reset-password/{token}",
            get(links::reset_page).post(links::reset),
        )
        .route(
            "/invite/{token}",
            get(links::invite_page).post(links::accept),
        )
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route("/analytics", get(analytics::page))
        .route("/analytics/export/{file}", get(analytics::export))
        .route("/team", get(team::page))
        .route("/team/invite", post(team::invite))
        .route("/team/invites/{id}/revoke", post(team::revoke_invite))
        .route("/team/users/{id}/role", post(team::set_role))
        .route("/team/users/{id}/remove", post(team::remove))
        .route("/switch-org", post(auth::switch_org))
        .route("/live", get(live::stream))
        .route("/assets/app.css", get(layout::css))
        .route("/assets/app.js", get(layout::js))
        .route("/assets/call.js", get(layout::call_js))
        .route("/assets/call-worklet.js", get(layout::call_worklet))
        .route("/assets/favicon.svg", get(layout::favicon))
        .route("/favicon.ico", get(layout::favicon))
        .route("/calls", get(calls::list))
        .route("/calls/{id}", get(calls::show))
        .route("/calls/{id}/act", post(call_control::act))
        .route("/calls/{id}/analyze", post(calls::analyze))
        .route("/calls/{id}/recording", get(calls::recording))
        .route(
            "/calls/{id}/recording/delete",
            post(calls::delete_recording),
        )
        .route("/appointments", get(appointments::calendar))
        .route(
            "/appointments/new",
            get(appointment_form::new).post(appointment_form::create),
        )
        .route("/appointments/feed", post(appointments::make_feed))
        .route("/appointments/feed/revoke", post(appointments::revoke_feed))
        .route(
            "/appointments/{id}",
            get(appointment_form::show).post(appointment_form::update),
        )
        .route("/appointments/{id}/cancel", post(appointment_form::cancel))
        .route("/campaigns", get(campaigns::list))
        .route(
            "/campaigns/new",
            get(campaigns::new_form).post(campaigns::create_draft),
        )
        .route("/campaigns/{id}", get(campaigns::show))
        .route("/campaigns/{id}/{action}", post(campaigns::act))
        .route("/oauth/authorize", get(oauth::consent).post(oauth::decide))
        .route("/assistant", get(assistant::page))
        .route("/assistant/message", post(assistant::message))
        .route("/assistant/voice", post(assistant_voice::start))
        .route("/assistant/voice/stream", get(assistant_voice::stream))
        .route("/assistant/actions/{id}/{what}", post(assistant::decide))
        .route("/assets/assistant.js", get(layout::assistant_js))
        .route("/knowledge", get(knowledge::list).post(knowledge::create))
        .route("/knowledge/upload", post(knowledge::upload))
        .route(
            "/knowledge/{id}",
            get(knowledge::show).post(knowledge::update),
        )
        .route("/knowledge/{id}/delete", post(knowledge::delete))
        .route("/tools", get(tools::list))
        .route(
            "/tools/custom/new",
            get(custom_tools::new_form).post(custom_tools::create),
        )
        .route(
            "/tools/custom/{id}",
            get(custom_tools::show).post(custom_tools::update),
        )
        .route("/tools/custom/{id}/test", post(custom_tools::test))
        .route("/tools/custom/{id}/rotate", post(custom_tools::rotate))
        .route("/tools/custom/{id}/delete", post(custom_tools::delete))
        .route(
            "/tools/mcp/new",
            get(mcp_servers::new_form).post(mcp_servers::create),
        )
        .route(
            "/tools/mcp/{id}",
            get(mcp_servers::show).post(mcp_servers::update),
        )
        .route("/tools/mcp/{id}/delete", post(mcp_servers::delete))
        .route("/tools/mcp/{id}/oauth/connect", post(mcp_oauth::connect))
        .route(
            "/tools/mcp/{id}/oauth/disconnect",
            post(mcp_oauth::disconnect),
        )
        .route(mcp_oauth::CALLBACK, get(mcp_oauth::callback))
        .route("/conversations", get(conversations::list))
        .route("/conversations/{id}", get(conversations::show))
        .route("/conversations/{id}/send", post(conversations::send))
        .route("/agents", get(agents::list))
        .route("/agents/new", get(agents::new_form).post(agents::create))
        .route("/agents/{id}", get(agents::edit_form).post(agents::update))
        .route("/agents/{id}/delete", post(agents::delete))
        .route("/agents/{id}/call-control", post(agent_calls::save))
        .route("/agents/{id}/try", post(agents::try_it))
        .route("/agents/{id}/web-call", post(web_call::start))
        .route(
            "/phone-numbers",
            get(manage::numbers).post(manage::create_number),
        )
        .route(
            "/phone-numbers/import",
            get(setup::import_form).post(setup::import),
        )
        .route("/settings/twilio/check", post(setup::check))
        .route("/phone-numbers/{id}", post(manage::update_number))
        .route("/phone-numbers/{id}/delete", post(manage::delete_number))
        .route("/phone-numbers/{id}/verify", post(manage::verify_number))
        .route(
            "/contacts",
            get(contacts::contacts).post(contacts::create_contact),
        )
        .route(
            "/contacts/{id}",
            get(contacts::edit_contact).post(contacts::update_contact),
        )
        .route("/contacts/{id}/call", post(contacts::call_contact))
        .route("/contacts/{id}/delete", post(contacts::delete_contact))
        .route(
            "/api-keys",
            get(manage::api_keys).post(manage::create_api_key),
        )
        .route("/api-keys/{id}/revoke", post(manage::revoke_api_key))
        .route(
            "/api-keys/apps/{family}/disconnect",
            post(manage::disconnect_app),
        )
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", get(webhooks::show).post(webhooks::update))
        .route("/webhooks/{id}/rotate", post(webhooks::rotate))
        .route("/webhooks/{id}/delete", post(webhooks::delete))
        .route("/webhooks/deliveries/{id}/resend", post(webhooks::resend))
        .route(
            "/settings",
            get(settings::settings).post(settings::save_settings),
        )
}
