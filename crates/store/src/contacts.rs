//! Contacts.

use crate::rows::{col, flag, json, like_escape, to_json, ts, Newest, Sql};
use crate::{conflict_on_unique, Access, Scope, Store, StoreError};
use sqlx::any::AnyRow;
use switchboard_domain::entities::{
    validate_contact_fields, Contact, ContactPatch, Cursor, NewContact, Page,
};
use switchboard_domain::ids::{ContactId, OrgId};
use switchboard_domain::values::PhoneNumber;
use switchboard_domain::Timestamp;

const COLUMNS: &str = "id, number, name, metadata, opted_out, created_at, updated_at";
const TAKEN: &str = "a contact with this number already exists";

fn contact_from_row(row: &AnyRow) -> Result<Contact, StoreError> {
    Ok(Contact {
        id: ContactId::from_db(col(row, "id")?),
        number: PhoneNumber::from_db(col(row, "number")?),
        name: col(row, "name")?,
        metadata: json(row, "metadata")?,
        opted_out: flag(row, "opted_out")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

impl Store {
    /// Creates a contact; the number is unique within the organization.
    pub async fn create_contact(
        &self,
        org: &OrgId,
        input: NewContact,
    ) -> Result<Contact, StoreError> {
        let now = Timestamp::now();
        let contact = Contact {
            id: ContactId::generate(),
            number: input.number,
            name: input.name.map(|n| n.trim().to_owned()),
            metadata: input.metadata.unwrap_or_else(|| serde_json::json!({})),
            opted_out: input.opted_out.unwrap_or(false),
            created_at: now,
            updated_at: now,
        };
        validate_contact_fields(contact.name.as_deref(), &contact.metadata)?;
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        crate::accounts::ensure_org_exists(&mut tx, org).await?;
        sqlx::query(&format!(
            "INSERT INTO contacts (org_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(org.as_str())
        .bind(contact.id.as_str())
        .bind(contact.number.as_str())
        .bind(contact.name.clone())
        .bind(to_json(&contact.metadata)?)
        .bind(i64::from(contact.opted_out))
        .bind(now.millis())
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique(TAKEN))?;
        tx.commit().await?;
        Ok(contact)
    }

    /// One contact.
    pub async fn get_contact(&self, org: &OrgId, id: &ContactId) -> Result<Contact, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let c = fetch_contact(&mut tx, org, id).await?;
        tx.commit().await?;
        Ok(c)
    }

    /// Lists contacts, newest first; `query` matches a number prefix or part of the name
    /// (case-insensitive).
    pub async fn list_contacts(
        &self,
        org: &OrgId,
        query: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Contact>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM contacts WHERE "));
        sql.push_arg("org_id = {}", org.to_string())?;
        if let Some(q) = query.map(str::trim).filter(|q| !q.is_empty()) {
            let escaped = like_escape(q);
            let num = sql.arg(format!("{escaped}%"))?;
            let name = sql.arg(format!("%{}%", escaped.to_lowercase()))?;
            sql.push(&format!(
                " AND (number LIKE {num} ESCAPE '\\' OR LOWER(name) LIKE {name} ESCAPE '\\')"
            ));
        }
        let order = Newest {
            col: "created_at",
            key: |c: &Contact| Cursor {
                at: c.created_at.millis(),
                id: c.id.to_string(),
            },
        };
        self.list_newest(org, sql, order, limit, cursor, contact_from_row)
            .await
    }

    /// Changes a contact.
    pub async fn update_contact(
        &self,
        org: &OrgId,
        id: &ContactId,
        patch: ContactPatch,
    ) -> Result<Contact, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let mut c = fetch_contact(&mut tx, org, id).await?;
        if let Some(n) = patch.number {
            c.number = n;
        }
        if let Some(n) = patch.name {
            c.name = n.map(|n| n.trim().to_owned());
        }
        if let Some(m) = patch.metadata {
            c.metadata = m;
        }
        if let Some(o) = patch.opted_out {
            c.opted_out = o;
        }
        validate_contact_fields(c.name.as_deref(), &c.metadata)?;
        c.updated_at = Timestamp::now();
        sqlx::query(
            "UPDATE contacts SET number = $1, name = $2, metadata = $3, opted_out = $4, updated_at = $5 \
             WHERE org_id = $6 AND id = $7",
        )
        .bind(c.number.as_str())
        .bind(c.name.clone())
        .bind(to_json(&c.metadata)?)
        .bind(i64::from(c.opted_out))
        .bind(c.updated_at.millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique(TAKEN))?;
        tx.commit().await?;
        Ok(c)
    }

    /// Deletes a contact.
    pub async fn delete_contact(&self, org: &OrgId, id: &ContactId) -> Result<(), StoreError> {
        self.delete_scoped(org, "contacts", id.as_str()).await
    }

    /// The contact with this number, if the organization has one.
    pub async fn find_contact_by_number(
        &self,
        org: &OrgId,
        number: &PhoneNumber,
    ) -> Result<Option<Contact>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM contacts WHERE org_id = $1 AND number = $2"
        ))
        .bind(org.as_str())
        .bind(number.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(contact_from_row).transpose()
    }

    /// The contact with this number, created (without a name) if missing. Safe under
    /// concurrency: the unique (org, number) rule decides, and the winner's row is returned.
    pub async fn ensure_contact(
        &self,
        org: &OrgId,
        number: &PhoneNumber,
    ) -> Result<Contact, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(&format!(
            "INSERT INTO contacts (org_id, {COLUMNS}) VALUES ($1, $2, $3, NULL, '{{}}', 0, $4, $5) \
             ON CONFLICT (org_id, number) DO NOTHING"
        ))
        .bind(org.as_str())
        .bind(ContactId::generate().to_string())
        .bind(number.as_str())
        .bind(now.millis())
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM contacts WHERE org_id = $1 AND number = $2"
        ))
        .bind(org.as_str())
        .bind(number.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        contact_from_row(&row)
    }
}

async fn fetch_contact(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &ContactId,
) -> Result<Contact, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM contacts WHERE org_id = $1 AND id = $2"
    ))
    .bind(org.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref()
        .map(contact_from_row)
        .transpose()?
        .ok_or(StoreError::NotFound)
}
