//! Row decoding and dynamic query building shared by every table module.

use crate::StoreError;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Arguments, Row};
use switchboard_domain::entities::{Cursor, Page, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use switchboard_domain::Timestamp;

/// Reads a column, turning decode failures into `Corrupt` with the column's name.
pub(crate) fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

/// Reads a Unix-millisecond column.
pub(crate) fn ts(row: &AnyRow, name: &str) -> Result<Timestamp, StoreError> {
    col::<i64>(row, name).map(Timestamp::from_millis)
}

/// Reads a nullable Unix-millisecond column.
pub(crate) fn ts_opt(row: &AnyRow, name: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(col::<Option<i64>>(row, name)?.map(Timestamp::from_millis))
}

/// Reads a 0/1 flag column.
pub(crate) fn flag(row: &AnyRow, name: &str) -> Result<bool, StoreError> {
    Ok(col::<i64>(row, name)? != 0)
}

/// Reads a JSON TEXT column into any deserialisable type.
pub(crate) fn json<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    name: &str,
) -> Result<T, StoreError> {
    let text: String = col(row, name)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

/// Reads a nullable JSON TEXT column.
pub(crate) fn json_opt<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    name: &str,
) -> Result<Option<T>, StoreError> {
    match col::<Option<String>>(row, name)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}"))),
    }
}

/// Reads a text column through a parser (enums, ids, numbers).
pub(crate) fn parsed<T>(
    row: &AnyRow,
    name: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let text: String = col(row, name)?;
    parse(&text).ok_or_else(|| StoreError::Corrupt(format!("column {name}: unexpected `{text}`")))
}

/// Serialises a value for a JSON TEXT column.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A SQL string with positional `$n` parameters, built piece by piece (filters, cursors).
pub(crate) struct Sql {
    text: String,
    args: AnyArguments<'static>,
    n: usize,
    error: Option<String>,
}

impl Sql {
    /// Starts with a fixed prefix.
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            args: AnyArguments::default(),
            n: 0,
            error: None,
        }
    }

    /// Appends raw SQL.
    pub(crate) fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Adds a parameter and returns its placeholder.
    pub(crate) fn arg<T>(&mut self, v: T) -> Result<String, StoreError>
    where
        T: 'static + Send + sqlx::Encode<'static, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        self.args
            .add(v)
            .map_err(|e| StoreError::Corrupt(format!("cannot bind parameter: {e}")))?;
        self.n += 1;
        Ok(format!("${}", self.n))
    }

    /// Appends `<sql with {}>` after binding `v` into the `{}`.
    pub(crate) fn push_arg<T>(&mut self, template: &str, v: T) -> Result<&mut Self, StoreError>
    where
        T: 'static + Send + sqlx::Encode<'static, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        let p = self.arg(v)?;
        self.text.push_str(&template.replace("{}", &p));
        Ok(self)
    }

    /// Appends a keyset condition for a newest-first list ordered by (`at_col`, `id`).
    pub(crate) fn before_cursor(
        &mut self,
        at_col: &str,
        cursor: Option<&Cursor>,
    ) -> Result<(), StoreError> {
        if let Some(c) = cursor {
            let at = self.arg(c.at)?;
            let at2 = self.arg(c.at)?;
            let id = self.arg(c.id.clone())?;
            self.text.push_str(&format!(
                " AND ({at_col} < {at} OR ({at_col} = {at2} AND id < {id}))"
            ));
        }
        Ok(())
    }

    /// Appends `ORDER BY at_col DESC, id DESC LIMIT n+1` (one extra row tells whether more exist).
    pub(crate) fn newest_first(&mut self, at_col: &str, limit: u32) -> Result<(), StoreError> {
        let lim = self.arg(i64::from(limit) + 1)?;
        self.text
            .push_str(&format!(" ORDER BY {at_col} DESC, id DESC LIMIT {lim}"));
        Ok(())
    }

    /// The query, ready to run.
    pub(crate) fn query(&mut self) -> sqlx::query::Query<'_, sqlx::Any, AnyArguments<'_>> {
        sqlx::query_with(&self.text, std::mem::take(&mut self.args))
    }

    /// Binds the next parameter of a fixed text (`$1`, `$2`, ... in order), like sqlx's
    /// `Query::bind`; an encoding error is reported by [`Sql::into_parts`].
    pub(crate) fn bind<T>(mut self, v: T) -> Self
    where
        T: 'static + Send + sqlx::Encode<'static, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        if let Err(e) = self.arg(v) {
            self.error.get_or_insert(e.to_string());
        }
        self
    }

    /// The text and its parameters.
    pub(crate) fn into_parts(self) -> Result<(String, AnyArguments<'static>), StoreError> {
        match self.error {
            Some(e) => Err(StoreError::Corrupt(e)),
            None => Ok((self.text, self.args)),
        }
    }
}

/// Clamps a requested page size.
pub(crate) fn page_size(limit: Option<u32>) -> u32 {
    limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE)
}

/// Turns `limit + 1` fetched items into a page and the cursor after its last item.
pub(crate) fn into_page<T>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> Cursor) -> Page<T> {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|last| key(last).encode())
    } else {
        None
    };
    Page {
        data: items,
        next_cursor,
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern used with `ESCAPE '\'`.
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The sort column of a newest-first list and how to make a cursor from an item.
pub(crate) struct Newest<T> {
    /// Timestamp column (ties broken by `id`).
    pub col: &'static str,
    /// Cursor after an item.
    pub key: fn(&T) -> Cursor,
}

impl crate::Store {
    /// Runs a newest-first keyset list built in `sql` (already filtered by organization):
    /// appends the cursor condition and ordering, fetches `limit + 1` rows, maps them.
    pub(crate) async fn list_newest<T>(
        &self,
        org: &switchboard_domain::ids::OrgId,
        mut sql: Sql,
        order: Newest<T>,
        limit: Option<u32>,
        cursor: Option<&Cursor>,
        map: fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let limit = page_size(limit);
        sql.before_cursor(order.col, cursor)?;
        sql.newest_first(order.col, limit)?;
        let mut tx = self
            .begin(crate::Scope::Org(org), crate::Access::Read)
            .await?;
        let rows = sql.query().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let items = rows.iter().map(map).collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(items, limit, order.key))
    }

    /// Deletes one row of a tenant table by id; `NotFound` when the organization has no such row.
    pub(crate) async fn delete_scoped(
        &self,
        org: &switchboard_domain::ids::OrgId,
        table: &'static str,
        id: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self
            .begin(crate::Scope::Org(org), crate::Access::Write)
            .await?;
        let done = sqlx::query(&format!(
            "DELETE FROM {table} WHERE org_id = $1 AND id = $2"
        ))
        .bind(org.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

/// One row of a tenant table by id inside an open transaction, mapped; `NotFound` when the
/// organization has no such row. `lock` is `""` or the engine's `FOR UPDATE`.
pub(crate) async fn fetch_scoped<T>(
    tx: &mut crate::Tx,
    table: &str,
    columns: &str,
    org: &switchboard_domain::ids::OrgId,
    id: &str,
    lock: &str,
    map: impl FnOnce(&AnyRow) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {columns} FROM {table} WHERE org_id = $1 AND id = $2{lock}"
    ))
    .bind(org.as_str())
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    map(&row)
}

/// Appends `started_at`-style range conditions (`from` inclusive, `to` exclusive).
pub(crate) fn push_range(
    sql: &mut Sql,
    col: &str,
    from: Option<switchboard_domain::Timestamp>,
    to: Option<switchboard_domain::Timestamp>,
) -> Result<(), StoreError> {
    if let Some(t) = from {
        sql.push_arg(&format!(" AND {col} >= {{}}"), t.millis())?;
    }
    if let Some(t) = to {
        sql.push_arg(&format!(" AND {col} < {{}}"), t.millis())?;
    }
    Ok(())
}
