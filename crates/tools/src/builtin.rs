//! Built-in tools: call control, appointments on the organization's calendar, contacts.

use crate::{Effect, Registry, ToolContext, ToolDefinition, ToolError};
use serde_json::{json, Value};
use switchboard_domain::agent::ContactScope;
use switchboard_domain::entities::{Appointment, Contact, NewAppointment};
use switchboard_domain::schedule::{parse_date, BusinessHours, SlotError};
use switchboard_domain::values::PhoneNumber;
use switchboard_domain::Timestamp;
use switchboard_store::StoreError;

type Output = Result<(Value, Option<Effect>), ToolError>;

/// The definition of a built-in tool.
pub(crate) fn definition(name: &str) -> Option<ToolDefinition> {
    let (name, description, parameters) = match name {
        "end_call" => (
            "end_call",
            "End the phone call. Say a short goodbye first; the line closes once you finish speaking.",
            json!({"type": "object", "properties": {"reason": {"type": "string", "description": "Why the call ends"}}}),
        ),
        "transfer_call" => (
            "transfer_call",
            "Transfer the caller to a person. Tell the caller you are transferring them first.",
            json!({"type": "object", "properties": {
                "reason": {"type": "string", "description": "Why the caller needs a person"},
                "summary": {"type": "string", "description": "Two or three sentences for the person taking the call: who is calling, what they need, and what has been done so far"}
            }, "required": ["reason"]}),
        ),
        "send_digits" => (
            "send_digits",
            "Press keys on the phone line, e.g. to choose from an automated menu (\"press 2 for sales\") or enter a number it asks for. Say nothing while pressing; afterwards listen to what the line says next.",
            json!({"type": "object", "properties": {"digits": {"type": "string",
                "description": "The keys in order: 0-9, * and #; w waits half a second between keys. At most 32."}},
                "required": ["digits"]}),
        ),
        "check_availability" => (
            "check_availability",
            "List free appointment times on a date (local business time).",
            json!({"type": "object", "properties": {"date": {"type": "string", "description": "Date as YYYY-MM-DD"}}, "required": ["date"]}),
        ),
        "book_appointment" => (
            "book_appointment",
            "Book an appointment for the person you are talking to.",
            json!({"type": "object", "properties": {
                "start": {"type": "string", "description": "Local start time as YYYY-MM-DDTHH:MM"},
                "name": {"type": "string", "description": "The person's name"},
                "notes": {"type": "string", "description": "What the appointment is for"}
            }, "required": ["start"]}),
        ),
        "cancel_appointment" => (
            "cancel_appointment",
            "Cancel one of the person's booked appointments, by id or by its local start time.",
            json!({"type": "object", "properties": {
                "appointment_id": {"type": "string"},
                "start": {"type": "string", "description": "Local start time as YYYY-MM-DDTHH:MM"}
            }}),
        ),
        "lookup_contact" => (
            "lookup_contact",
            "Look up what we know about the person (name, notes, upcoming appointments). Without a number, looks up the person you are talking to.",
            json!({"type": "object", "properties": {"number": {"type": "string", "description": "E.164 number, e.g. +15551234567"}}}),
        ),
        "send_sms" => (
            "send_sms",
            "Send a text message (SMS) to one of the organization's contacts, e.g. to pass on a message or send details.",
            json!({"type": "object", "properties": {
                "to": {"type": "string", "description": "The contact's E.164 number, e.g. +15551234567"},
                "text": {"type": "string", "description": "The message, at most 1600 characters"}
            }, "required": ["to", "text"]}),
        ),
        "call_contact" => (
            "call_contact",
            "Place a phone call from you (this agent) to one of the organization's contacts, now or at a given time, e.g. when someone asks to be called back.",
            json!({"type": "object", "properties": {
                "to": {"type": "string", "description": "The contact's E.164 number, e.g. +15551234567"},
                "at": {"type": "string", "description": "When to call, local time YYYY-MM-DDTHH:MM (or RFC 3339); leave out to call now"},
                "reason": {"type": "string", "description": "Why the call is made, for the agent on the call"}
            }, "required": ["to"]}),
        ),
        "schedule_sms" => (
            "schedule_sms",
            "Send a text message (SMS) to one of the organization's contacts at a later time, e.g. a reminder.",
            json!({"type": "object", "properties": {
                "to": {"type": "string", "description": "The contact's E.164 number, e.g. +15551234567"},
                "text": {"type": "string", "description": "The message, at most 1600 characters"},
                "at": {"type": "string", "description": "When to send it, local time YYYY-MM-DDTHH:MM (or RFC 3339)"}
            }, "required": ["to", "text", "at"]}),
        ),
        _ => return None,
    };
    Some(ToolDefinition {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters,
    })
}

/// Runs a built-in tool.
pub(crate) async fn run(reg: &Registry, ctx: &ToolContext, name: &str, args: &Value) -> Output {
    match name {
        "send_sms" => send_sms(reg, ctx, args).await,
        "call_contact" => call_contact(reg, ctx, args).await,
        "schedule_sms" => schedule_sms(reg, ctx, args).await,
        "end_call" => Ok((
            json!({"ok": true, "message": "The call ends after your goodbye."}),
            Some(Effect::EndCall),
        )),
        "transfer_call" => match &ctx.agent.transfer_number {
            Some(n) => Ok((
                json!({"ok": true, "message": "Transferring after you finish speaking."}),
                Some(Effect::Transfer {
                    target: n.clone(),
                    summary: arg(args, "summary")
                        .or(arg(args, "reason"))
                        .map(|s| s.chars().take(1_000).collect()),
                }),
            )),
            None => Err(ToolError::new(
                "no_transfer_number",
                "There is nobody to transfer to right now.",
            )),
        },
        "send_digits" => send_digits(args),
        "check_availability" => check_availability(ctx, args).await,
        "book_appointment" => book(ctx, args).await,
        "cancel_appointment" => cancel(ctx, args).await,
        "lookup_contact" => lookup(ctx, args).await,
        crate::knowledge::NAME => crate::knowledge::run(ctx, args).await.map(|v| (v, None)),
        _ => Err(ToolError::new(
            "unknown_tool",
            format!("The tool `{name}` is not available."),
        )),
    }
}

/// Checks the keys to press; the call actor presses them (Twilio `<Play digits>`).
fn send_digits(args: &Value) -> Output {
    let digits = arg(args, "digits").unwrap_or_default();
    let valid = digits
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'w' | 'W'));
    if digits.is_empty() || digits.chars().count() > 32 || !valid {
        return Err(ToolError::new(
            "invalid_digits",
            "Give the keys to press as digits, * and # (w to pause), at most 32.",
        ));
    }
    let digits = digits.replace('W', "w");
    Ok((
        json!({"ok": true, "pressed": digits,
            "message": "The keys were pressed. Listen to what the line says next."}),
        Some(Effect::SendDigits(digits)),
    ))
}

fn arg<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn store_error(e: StoreError) -> ToolError {
    tracing::error!(error = %e, "tool store access failed");
    ToolError::new(
        "unavailable",
        "The calendar is not reachable right now; please try again later.",
    )
}

fn slot_error(e: SlotError) -> ToolError {
    let code = match e {
        SlotError::Unreadable(_) | SlotError::BadLength => "invalid_time",
        SlotError::Past => "past",
        SlotError::Closed(_) => "outside_hours",
        SlotError::ClosedDay(_) => "closed_day",
    };
    ToolError::new(code, e.to_string())
}

/// Free slot start times (local `HH:MM`) on a day.
async fn free_slots(
    ctx: &ToolContext,
    hours: &BusinessHours,
    date: jiff::civil::Date,
) -> Result<Vec<(Timestamp, String)>, ToolError> {
    let slots = hours.slots_on(date, Timestamp::now());
    let (Some(first), Some(last)) = (slots.first(), slots.last()) else {
        return Ok(Vec::new());
    };
    let booked = ctx
        .store
        .list_appointments(&ctx.org, first.0, last.1, None)
        .await
        .map_err(store_error)?;
    Ok(slots
        .into_iter()
        .filter(|(s, e)| !booked.iter().any(|b| b.starts_at < *e && b.ends_at > *s))
        .map(|(s, _)| {
            let local = hours.local_string(s);
            (s, local.get(11..16).unwrap_or(&local).to_owned())
        })
        .collect())
}

async fn check_availability(ctx: &ToolContext, args: &Value) -> Output {
    let hours = &ctx.agent.business_hours;
    let date = arg(args, "date")
        .and_then(parse_date)
        .ok_or_else(|| ToolError::new("invalid_date", "Please give the date as YYYY-MM-DD."))?;
    if let Some(today) = hours.local_date(Timestamp::now()) {
        let days = (date - today).get_days();
        if !(0..=366).contains(&days) {
            return Err(ToolError::new(
                "invalid_date",
                "Appointments can be checked from today up to a year ahead.",
            ));
        }
    }
    let free = free_slots(ctx, hours, date).await?;
    Ok((
        json!({
            "ok": true,
            "date": date.to_string(),
            "timezone": hours.timezone,
            "slot_minutes": hours.slot_minutes,
            "business_hours": hours.describe(),
            "available": free.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>(),
        }),
        None,
    ))
}

async fn caller_contact(ctx: &ToolContext) -> Result<Contact, ToolError> {
    let number = ctx.contact_number.as_ref().ok_or_else(|| {
        ToolError::new(
            "no_contact",
            "I don't have a phone number for you, so I can't book on this channel.",
        )
    })?;
    ctx.store
        .ensure_contact(&ctx.org, number)
        .await
        .map_err(store_error)
}

fn describe(hours: &BusinessHours, a: &Appointment) -> Value {
    json!({"appointment_id": a.id, "start": hours.local_string(a.starts_at), "end": hours.local_string(a.ends_at), "title": a.title})
}

async fn book(ctx: &ToolContext, args: &Value) -> Output {
    let hours = &ctx.agent.business_hours;
    let start_text = arg(args, "start").ok_or_else(|| {
        ToolError::new("invalid_time", "Please give the start as YYYY-MM-DDTHH:MM.")
    })?;
    let start = hours.parse_start(start_text).map_err(slot_error)?;
    let end = hours
        .check_slot(start, Timestamp::now())
        .map_err(slot_error)?;
    let contact = caller_contact(ctx).await?;
    let name = arg(args, "name").map(str::to_owned);
    let title = match name.as_deref().or(contact.name.as_deref()) {
        Some(n) => format!(
            "Appointment with {}",
            n.chars().take(100).collect::<String>()
        ),
        None => format!("Appointment with {}", contact.number),
    };
    let input = NewAppointment {
        agent_id: Some(ctx.agent.id.clone()),
        contact_id: Some(contact.id.clone()),
        starts_at: start,
        ends_at: end,
        title,
        notes: arg(args, "notes").map(|n| n.chars().take(2000).collect()),
        by: format!("agent:{}", ctx.agent.id),
    };
    match ctx.store.book_appointment(&ctx.org, input).await {
        Ok(a) => Ok((
            json!({"ok": true, "status": "booked", "appointment": describe(hours, &a)}),
            None,
        )),
        Err(StoreError::Conflict(_)) => {
            let alternatives = match hours.local_date(start) {
                Some(d) => free_slots(ctx, hours, d).await?,
                None => Vec::new(),
            };
            let alternatives: Vec<String> =
                alternatives.into_iter().map(|(_, l)| l).take(6).collect();
            Err(ToolError {
                code: "slot_taken",
                message: "That time is already booked. Please offer the caller another time."
                    .into(),
                details: Some(json!({"available_same_day": alternatives})),
            })
        }
        Err(e) => Err(store_error(e)),
    }
}

/// The contact's booked appointments from now to a year ahead, earliest first.
async fn upcoming(ctx: &ToolContext, contact: &Contact) -> Result<Vec<Appointment>, ToolError> {
    let now = Timestamp::now();
    let year = Timestamp::from_millis(now.millis() + 366 * 86_400_000);
    ctx.store
        .list_appointments(&ctx.org, now, year, Some(&contact.id))
        .await
        .map_err(store_error)
}

async fn cancel(ctx: &ToolContext, args: &Value) -> Output {
    let hours = &ctx.agent.business_hours;
    let contact = caller_contact(ctx).await?;
    let upcoming = upcoming(ctx, &contact).await?;
    let target = if let Some(id) = arg(args, "appointment_id") {
        upcoming.iter().find(|a| a.id == id)
    } else if let Some(start) = arg(args, "start") {
        let t = hours.parse_start(start).map_err(slot_error)?;
        upcoming.iter().find(|a| a.starts_at == t)
    } else if upcoming.len() == 1 {
        upcoming.first()
    } else if upcoming.is_empty() {
        return Err(ToolError::new(
            "not_found",
            "There are no upcoming appointments under your number.",
        ));
    } else {
        return Err(ToolError {
            code: "ambiguous",
            message: "Which appointment should be cancelled?".into(),
            details: Some(
                json!({"upcoming": upcoming.iter().map(|a| describe(hours, a)).collect::<Vec<_>>()}),
            ),
        });
    };
    let Some(target) = target else {
        return Err(ToolError::new(
            "not_found",
            "I could not find that appointment under your number.",
        ));
    };
    match ctx
        .store
        .cancel_appointment(
            &ctx.org,
            &target.id,
            Some(&contact.id),
            &format!("agent:{}", ctx.agent.id),
        )
        .await
    {
        Ok(a) => Ok((
            json!({"ok": true, "status": "cancelled", "appointment": describe(hours, &a)}),
            None,
        )),
        // Canceled meanwhile (by staff, or another call): nothing left to cancel.
        Err(StoreError::NotFound | StoreError::Conflict(_)) => Err(ToolError::new(
            "not_found",
            "I could not find that appointment under your number.",
        )),
        Err(e) => Err(store_error(e)),
    }
}

/// An agent scoped to the caller (the default) acts only for the person on the line: any
/// other number is refused with `not_the_caller`, and `what` says what it would have done.
fn for_the_caller(ctx: &ToolContext, number: &PhoneNumber, what: &str) -> Result<(), ToolError> {
    if ctx.agent.contact_scope == ContactScope::Organization
        || ctx.contact_number.as_ref() == Some(number)
    {
        return Ok(());
    }
    tracing::info!(
        tool_scope = "caller",
        "a tool was asked about another contact; refused"
    );
    Err(ToolError::new(
        "not_the_caller",
        format!("I can only {what} the person I'm speaking with, not anyone else."),
    ))
}

async fn lookup(ctx: &ToolContext, args: &Value) -> Output {
    let number = match arg(args, "number") {
        Some(n) => {
            let n = PhoneNumber::parse(n).map_err(|_| {
                ToolError::new(
                    "invalid_number",
                    "Please give the number in E.164, like +15551234567.",
                )
            })?;
            for_the_caller(ctx, &n, "look up the details of")?;
            n
        }
        None => ctx.contact_number.clone().ok_or_else(|| {
            ToolError::new("no_contact", "I don't have a phone number to look up.")
        })?,
    };
    let Some(contact) = ctx
        .store
        .find_contact_by_number(&ctx.org, &number)
        .await
        .map_err(store_error)?
    else {
        return Ok((
            json!({"ok": true, "found": false, "number": number.as_str()}),
            None,
        ));
    };
    let upcoming = upcoming(ctx, &contact).await?;
    let hours = &ctx.agent.business_hours;
    Ok((
        json!({
            "ok": true,
            "found": true,
            "number": contact.number.as_str(),
            "name": contact.name,
            "opted_out": contact.opted_out,
            "metadata": contact.metadata,
            "upcoming_appointments": upcoming.iter().map(|a| describe(hours, a)).collect::<Vec<_>>(),
        }),
        None,
    ))
}

/// The organization's contact at `args.to`, refused when unknown or opted out.
async fn reachable_contact(ctx: &ToolContext, args: &Value) -> Result<PhoneNumber, ToolError> {
    let to = args.get("to").and_then(Value::as_str).unwrap_or_default();
    let Ok(to) = PhoneNumber::parse(to) else {
        return Err(ToolError::new(
            "invalid_number",
            "That is not a valid phone number; use the international format, like +15551234567.",
        ));
    };
    for_the_caller(ctx, &to, "contact")?;
    match ctx.store.find_contact_by_number(&ctx.org, &to).await {
        Ok(Some(c)) if c.opted_out => Err(ToolError::new(
            "opted_out",
            "That person has opted out, so I cannot contact them.",
        )),
        Ok(Some(_)) => Ok(to),
        Ok(None) => Err(ToolError::new(
            "not_a_contact",
            "That number is not one of our contacts, so I cannot contact it.",
        )),
        Err(e) => Err(store_error(e)),
    }
}

/// `args.at` as a future time (local to the agent's business hours, or RFC 3339).
fn future_time(ctx: &ToolContext, args: &Value) -> Result<Option<Timestamp>, ToolError> {
    let Some(text) = args
        .get("at")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
    else {
        return Ok(None);
    };
    let unreadable = || {
        ToolError::new(
            "invalid_time",
            "I could not read that time; use YYYY-MM-DDTHH:MM.",
        )
    };
    let at = ctx
        .agent
        .business_hours
        .parse_start(text)
        .map_err(|_| unreadable())?;
    if at <= Timestamp::now() {
        return Err(ToolError::new(
            "invalid_time",
            "That time has already passed.",
        ));
    }
    Ok(Some(at))
}

async fn call_contact(reg: &Registry, ctx: &ToolContext, args: &Value) -> Output {
    let Some(outreach) = reg.outreach() else {
        return Err(ToolError::new(
            "unavailable",
            "Calls cannot be placed from here.",
        ));
    };
    let to = reachable_contact(ctx, args).await?;
    let at = future_time(ctx, args)?;
    let reason = args.get("reason").and_then(Value::as_str);
    Ok((outreach.call_contact(ctx, &to, at, reason).await?, None))
}

async fn schedule_sms(reg: &Registry, ctx: &ToolContext, args: &Value) -> Output {
    let Some(outreach) = reg.outreach() else {
        return Err(ToolError::new(
            "unavailable",
            "Text messages cannot be scheduled from here.",
        ));
    };
    let to = reachable_contact(ctx, args).await?;
    let text = args
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim();
    if text.is_empty() || text.chars().count() > 1600 {
        return Err(ToolError::new(
            "invalid_text",
            "The message must have between 1 and 1600 characters.",
        ));
    }
    let Some(at) = future_time(ctx, args)? else {
        return Err(ToolError::new("invalid_time", "Say when to send it."));
    };
    Ok((outreach.schedule_sms(ctx, &to, text, at).await?, None))
}

async fn send_sms(reg: &Registry, ctx: &ToolContext, args: &Value) -> Output {
    let Some(sender) = reg.texts() else {
        return Err(ToolError::new(
            "unavailable",
            "Text messages cannot be sent from here.",
        ));
    };
    let to = args.get("to").and_then(Value::as_str).unwrap_or_default();
    let Ok(to) = PhoneNumber::parse(to) else {
        return Err(ToolError::new(
            "invalid_number",
            "That is not a valid phone number; use the international format, like +15551234567.",
        ));
    };
    let text = args
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim();
    if text.is_empty() || text.chars().count() > 1600 {
        return Err(ToolError::new(
            "invalid_text",
            "The message must have between 1 and 1600 characters.",
        ));
    }
    for_the_caller(ctx, &to, "text")?;
    // Only the organization's own contacts: the agent cannot text arbitrary numbers.
    match ctx.store.find_contact_by_number(&ctx.org, &to).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(ToolError::new(
                "not_a_contact",
                "That number is not one of our contacts, so I cannot text it.",
            ))
        }
        Err(e) => return Err(store_error(e)),
    }
    let output = sender.send_sms(ctx, &to, text).await?;
    Ok((output, None))
}
