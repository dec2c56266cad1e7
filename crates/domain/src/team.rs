//! The team: invitations, password resets and the audit trail of who changed what.

use crate::ids::{OrgId, UserId};
use crate::values::Role;
use crate::{Secret, Timestamp, ValidationError};
use serde::Serialize;

/// How long an invitation link works.
pub const INVITE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long a password-reset link works.
pub const RESET_TTL_MS: i64 = 3600 * 1000;
/// The shortest password a login may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted (argon2 hashes anything, but a megabyte "password" is abuse).
pub const MAX_PASSWORD_CHARS: usize = 200;

/// Checks a new password: long enough to resist guessing, short enough to hash.
pub fn validate_password(field: &str, password: &Secret) -> Result<(), ValidationError> {
    let n = password.expose().chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(ValidationError::new(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// What a single-use link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Join the organization with a role.
    Invite,
    /// Choose a new password.
    Reset,
}

impl TokenKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Invite => "invite",
            TokenKind::Reset => "reset",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<TokenKind> {
        match s {
            "invite" => Some(TokenKind::Invite),
            "reset" => Some(TokenKind::Reset),
            _ => None,
        }
    }
}

/// An invitation or a password reset (the link's secret is never stored, only its hash).
#[derive(Debug, Clone, PartialEq)]
pub struct UserToken {
    /// Id (`tok_...`).
    pub id: String,
    /// The organization it belongs to.
    pub org_id: OrgId,
    /// Invitation or reset.
    pub kind: TokenKind,
    /// The e-mail invited, or the login's e-mail.
    pub email: String,
    /// The role an invitation grants.
    pub role: Option<Role>,
    /// The login a reset is for.
    pub user_id: Option<UserId>,
    /// Made.
    pub created_at: Timestamp,
    /// Stops working.
    pub expires_at: Timestamp,
    /// Used (a link works once).
    pub used_at: Option<Timestamp>,
    /// Withdrawn by an admin.
    pub revoked_at: Option<Timestamp>,
}

/// Why a link does not work (each shown to the person who opened it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// No such link (or it was for something else).
    Unknown,
    /// Past its expiry.
    Expired,
    /// Already used.
    Used,
    /// Withdrawn by an admin, or replaced by a newer link.
    Revoked,
    /// The organization is disabled.
    Disabled,
}

impl LinkProblem {
    /// A stable code.
    pub fn code(self) -> &'static str {
        match self {
            LinkProblem::Unknown => "link_unknown",
            LinkProblem::Expired => "link_expired",
            LinkProblem::Used => "link_used",
            LinkProblem::Revoked => "link_revoked",
            LinkProblem::Disabled => "org_disabled",
        }
    }

    /// What the person is told.
    pub fn message(self) -> &'static str {
        match self {
            LinkProblem::Unknown => "This link is not valid. Check that it was copied whole.",
            LinkProblem::Expired => "This link has expired. Ask for a new one.",
            LinkProblem::Used => "This link was already used; each link works once.",
            LinkProblem::Revoked => "This link was withdrawn or replaced by a newer one.",
            LinkProblem::Disabled => "This organization is disabled.",
        }
    }
}

impl UserToken {
    /// Whether the link may be used now for `kind`.
    pub fn usable(&self, kind: TokenKind, now: Timestamp) -> Result<(), LinkProblem> {
        if self.kind != kind {
            Err(LinkProblem::Unknown)
        } else if self.used_at.is_some() {
            Err(LinkProblem::Used)
        } else if self.revoked_at.is_some() {
            Err(LinkProblem::Revoked)
        } else if now >= self.expires_at {
            Err(LinkProblem::Expired)
        } else {
            Ok(())
        }
    }
}

/// Who made a change, for the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    /// The signed-in user, when there is one.
    pub user_id: Option<UserId>,
    /// What the trail shows: the user's e-mail, or `cli`.
    pub label: String,
}

impl Actor {
    /// A signed-in user.
    pub fn user(id: &UserId, email: &str) -> Actor {
        Actor {
            user_id: Some(id.clone()),
            label: email.to_owned(),
        }
    }

    /// The command line (`switchboard user ...`).
    pub fn cli() -> Actor {
        Actor {
            user_id: None,
            label: "cli".into(),
        }
    }
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Id.
    pub id: String,
    /// Who: a user's e-mail, or `cli`.
    pub actor: String,
    /// What, e.g. `user.invited`, `user.role_changed`, `user.password_reset`.
    pub action: String,
    /// To what: usually the e-mail of the login concerned.
    pub target: String,
    /// Details, e.g. `member -> admin`.
    pub detail: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(kind: TokenKind) -> UserToken {
        UserToken {
            id: "tok_1".into(),
            org_id: OrgId::generate(),
            kind,
            email: "a@b.test".into(),
            role: Some(Role::Member),
            user_id: None,
            created_at: Timestamp::from_millis(0),
            expires_at: Timestamp::from_millis(1000),
            used_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn a_link_works_once_for_its_purpose_until_it_expires() {
        let t = token(TokenKind::Invite);
        assert_eq!(
            t.usable(TokenKind::Invite, Timestamp::from_millis(999)),
            Ok(())
        );
        assert_eq!(
            t.usable(TokenKind::Reset, Timestamp::from_millis(1)),
            Err(LinkProblem::Unknown)
        );
        assert_eq!(
            t.usable(TokenKind::Invite, Timestamp::from_millis(1000)),
            Err(LinkProblem::Expired)
        );
        let used = UserToken {
            used_at: Some(Timestamp::from_millis(5)),
            ..token(TokenKind::Invite)
        };
        assert_eq!(
            used.usable(TokenKind::Invite, Timestamp::from_millis(6)),
            Err(LinkProblem::Used)
        );
    }

    #[test]
    fn passwords_have_a_floor_and_a_ceiling() {
        assert!(validate_password("password", &Secret::new("short")).is_err());
        assert!(validate_password("password", &Secret::new("twelve chars")).is_ok());
        assert!(validate_password("password", &Secret::new("x".repeat(201))).is_err());
    }
}
