//! Scheduled text messages: a business-started conversation request checked now and made at
//! `send_at` by a durable job. A send time that passed while no server ran is met at the next
//! start; a send cut short by a crash is not repeated (it is recorded `failed`, saying so).

use crate::api::NewOutbound;
use crate::{Messaging, MessagingError};
use switchboard_domain::entities::ScheduledMessage;
use switchboard_domain::ids::OrgId;
use switchboard_domain::{Timestamp, ValidationError};
use switchboard_store::{Job, SendStart, StoreError, SCHEDULED_JOB};

impl Messaging {
    /// Checks `req` as `POST /api/v1/conversations` would, then stores it to be made at
    /// `send_at`.
    pub async fn schedule(
        &self,
        org: &OrgId,
        req: NewOutbound,
        send_at: Timestamp,
    ) -> Result<ScheduledMessage, MessagingError> {
        let inner = &self.inner;
        if req.generate_first_message {
            return Err(ValidationError::new(
                "conversation.generate_first_message",
                "a scheduled message is sent as written: give `first_message` or `content_sid`",
            )
            .into());
        }
        self.resolve(org, &req).await?;
        let now = inner.clock.now();
        let request = serde_json::to_value(&req).map_err(|e| {
            MessagingError::Store(StoreError::Corrupt(format!(
                "request not serialisable: {e}"
            )))
        })?;
        Ok(inner
            .store
            .schedule_message(
                org,
                req.channel,
                req.contact_number.as_str(),
                &request,
                send_at.max(now),
                now,
            )
            .await?)
    }

    /// Sends the scheduled messages whose time came; returns how many jobs ran.
    pub async fn run_scheduled_once(&self) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let jobs = inner
            .store
            .claim_jobs(
                &inner.owner,
                &[SCHEDULED_JOB],
                inner.clock.now(),
                60_000,
                16,
            )
            .await?;
        let n = jobs.len();
        for job in jobs {
            if let Err(e) = self.send_scheduled(&job).await {
                tracing::error!(job_id = %job.id, error = %e, "scheduled message job failed; retrying later");
                let at = Timestamp::from_millis(inner.clock.now().millis() + 30_000);
                let _ = inner
                    .store
                    .retry_job(&job.id, &inner.owner, at, &e.to_string())
                    .await;
                continue;
            }
            if let Err(e) = inner
                .store
                .complete_job(&job.id, &inner.owner, inner.clock.now())
                .await
            {
                tracing::error!(error = %e, "cannot complete a scheduled message job");
            }
        }
        Ok(n)
    }

    async fn send_scheduled(&self, job: &Job) -> Result<(), StoreError> {
        let inner = &self.inner;
        let org = &job.org_id;
        let Some(id) = job.payload["scheduled_id"].as_str() else {
            return Ok(());
        };
        let now = inner.clock.now();
        let scheduled = match inner.store.begin_scheduled_send(org, id, now).await? {
            SendStart::Done => return Ok(()),
            SendStart::Unknown(_) => {
                return inner
                    .store
                    .finish_scheduled_send(
                        org,
                        id,
                        Err("the server stopped while sending, so whether it was sent is unknown; it was not sent again"),
                        now,
                    )
                    .await;
            }
            SendStart::Send(s) => s,
        };
        let req: NewOutbound = match serde_json::from_value(scheduled.request.clone()) {
            Ok(r) => r,
            Err(e) => {
                let why = format!("the stored request is unreadable: {e}");
                return inner
                    .store
                    .finish_scheduled_send(org, id, Err(&why), now)
                    .await;
            }
        };
        match self.start_conversation(org, req).await {
            Ok(started) => {
                tracing::info!(org_id = %org, scheduled_id = %id, message_id = %started.message.id, "scheduled message sent");
                inner
                    .store
                    .finish_scheduled_send(
                        org,
                        id,
                        Ok((&started.conversation.id, &started.message.id)),
                        inner.clock.now(),
                    )
                    .await
            }
            Err(e) => {
                tracing::warn!(org_id = %org, scheduled_id = %id, error = %e, "scheduled message not sent");
                let why = format!("{}: {e}", e.code());
                inner
                    .store
                    .finish_scheduled_send(org, id, Err(&why), inner.clock.now())
                    .await
            }
        }
    }
}
