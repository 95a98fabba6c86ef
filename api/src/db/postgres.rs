//! The PostgreSQL side of db/mod.rs: connecting, turning the crate's SQLite-flavoured SQL into
//! PostgreSQL's (the only place the dialects differ, besides the schema in db/schema.rs), and
//! moving [`Value`]s in and out of PostgreSQL's binary format.

use super::value::{Kind, Row, Value};
use super::SqlError;
use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use std::collections::HashMap;
use std::error::Error as StdError;

type BoxError = Box<dyn StdError + Sync + Send>;

/// PostgreSQL's types that are text both ways.
const TEXT_TYPES: [Type; 5] = [
    Type::TEXT,
    Type::VARCHAR,
    Type::BPCHAR,
    Type::NAME,
    Type::JSON,
];

/// One open connection and its prepared statements, keyed by the crate's SQL text.
pub struct PgConn {
    pub client: postgres::Client,
    /// Keyed by the SQL and its parameters' kinds: each parameter is declared with the type of
    /// the value given, so PostgreSQL never has to guess one.
    statements: HashMap<(String, Vec<Kind>), postgres::Statement>,
}

/// Every statement of a transaction that writes takes this lock first: writers on every replica
/// are serialised as SQLite serialises its writers, so a rule checked inside a transaction (the
/// last administrator, the next serial) holds on PostgreSQL too.
pub const WRITE_LOCK: i64 = 0x6d69_6701; // "mig\x01"
/// Held while the schema is migrated: replicas starting together migrate once.
pub const MIGRATE_LOCK: i64 = 0x6d69_6702;

impl PgConn {
    pub fn connect(
        cfg: &postgres::Config,
        tls: Option<&super::Verified>,
    ) -> Result<PgConn, SqlError> {
        let client = match tls {
            Some(t) => cfg.connect(t.clone()),
            None => cfg.connect(postgres::NoTls),
        }
        .map_err(SqlError::Pg)?;
        Ok(PgConn {
            client,
            statements: HashMap::new(),
        })
    }

    fn statement(&mut self, sql: &str, values: &[Value]) -> Result<postgres::Statement, SqlError> {
        let key = (
            sql.to_string(),
            values.iter().map(Value::kind).collect::<Vec<_>>(),
        );
        if let Some(s) = self.statements.get(&key) {
            return Ok(s.clone());
        }
        let types: Vec<Type> = key
            .1
            .iter()
            .map(|k| match k {
                Kind::Int => Type::INT8,
                Kind::Real => Type::FLOAT8,
                Kind::Text => Type::TEXT,
                Kind::Blob => Type::BYTEA,
            })
            .collect();
        let s = self
            .client
            .prepare_typed(&translate(sql), &types)
            .map_err(SqlError::Pg)?;
        self.statements.insert(key, s.clone());
        Ok(s)
    }

    pub fn execute(&mut self, sql: &str, values: &[Value]) -> Result<usize, SqlError> {
        let st = self.statement(sql, values)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        let n = self.client.execute(&st, &refs).map_err(SqlError::Pg)?;
        Ok(n as usize)
    }

    pub fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>, SqlError> {
        let st = self.statement(sql, values)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as _).collect();
        let rows = self.client.query(&st, &refs).map_err(SqlError::Pg)?;
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<_, Value>(i).map_err(|e| SqlError::Column {
                            index: i,
                            problem: e.to_string(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Row)
            })
            .collect()
    }

    pub fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        self.client.batch_execute(sql).map_err(SqlError::Pg)
    }
}

/// The crate's SQL as PostgreSQL reads it: `?N` and `?` become `$N`, `LIKE` becomes `ILIKE`
/// (SQLite's LIKE ignores ASCII case), and `json_each(?N)` over a JSON array of texts becomes
/// `jsonb_array_elements_text`. Quoted text is left alone.
pub fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 1u32;
    let mut chars = sql.char_indices().peekable();
    let mut quoted = false;
    while let Some((i, c)) = chars.next() {
        if quoted {
            out.push(c);
            quoted = c != '\'';
            continue;
        }
        match c {
            '\'' => {
                quoted = true;
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if !d.is_ascii_digit() {
                        break;
                    }
                    digits.push(d);
                    chars.next();
                }
                let n = if digits.is_empty() {
                    let n = next;
                    next += 1;
                    n.to_string()
                } else {
                    digits
                };
                out.push('$');
                out.push_str(&n);
            }
            _ if word_at(sql, i, "LIKE") => {
                out.push_str("ILIKE");
                for _ in 0..3 {
                    chars.next();
                }
            }
            _ if sql[i..].starts_with(JSON_EACH) => {
                // `SELECT value FROM json_each(?N)`: the parameter is a TEXT holding JSON.
                let rest = &sql[i + JSON_EACH.len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                out.push_str(&format!(
                    "SELECT jsonb_array_elements_text(CAST(${digits} AS jsonb))"
                ));
                for _ in 0..JSON_EACH.len() + digits.len() {
                    chars.next();
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// SQLite's spelling of "the texts of the JSON array in parameter N", followed by N and `)`.
const JSON_EACH: &str = "SELECT value FROM json_each(?";

/// Whether the keyword `w` (upper case) stands alone at byte `i`.
fn word_at(sql: &str, i: usize, w: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    sql[i..].starts_with(w)
        && !sql[..i].chars().next_back().is_some_and(ident)
        && !sql[i + w.len()..].chars().next().is_some_and(ident)
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (self, ty) {
            (Value::Null(_), _) => Ok(IsNull::Yes),
            (Value::Int(i), t) if *t == Type::INT8 => i.to_sql(ty, out),
            (Value::Int(i), t) if *t == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), t) if *t == Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), t) if *t == Type::BOOL => (*i != 0).to_sql(ty, out),
            (Value::Int(i), t) if *t == Type::FLOAT8 => (*i as f64).to_sql(ty, out),
            (Value::Real(r), t) if *t == Type::FLOAT8 => r.to_sql(ty, out),
            (Value::Text(s), t) if *t == Type::JSONB => {
                // The binary JSONB format: a version byte, then the text.
                out.extend_from_slice(&[1]);
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Text(s), t) if TEXT_TYPES.contains(t) => s.as_str().to_sql(ty, out),
            (Value::Blob(b), t) if *t == Type::BYTEA => b.as_slice().to_sql(ty, out),
            (v, t) => Err(format!("a parameter of type {t} cannot take {v:?}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Value, BoxError> {
        Ok(match ty {
            t if *t == Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            t if *t == Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            t if *t == Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            t if *t == Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
            t if *t == Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            t if *t == Type::BYTEA => Value::Blob(raw.to_vec()),
            t if *t == Type::JSONB => match raw.split_first() {
                Some((1, text)) => Value::Text(std::str::from_utf8(text)?.to_string()),
                _ => return Err("a JSONB value of an unknown version".into()),
            },
            t if TEXT_TYPES.contains(t) => Value::Text(String::from_sql(ty, raw)?),
            // SUM over BIGINT is NUMERIC in PostgreSQL: the SQL casts it to BIGINT.
            t => return Err(format!("a column of type {t} (cast it in the SQL)").into()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Value, BoxError> {
        // A NULL read back has no kind; Text is as good as any (readers only test for NULL).
        Ok(Value::Null(Kind::Text))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn placeholders_like_and_json_each_are_translated_outside_quotes() {
        assert_eq!(
            translate("SELECT a FROM t WHERE b = ?2 AND c LIKE ?1 ESCAPE '\\' AND d = '?x LIKE'"),
            "SELECT a FROM t WHERE b = $2 AND c ILIKE $1 ESCAPE '\\' AND d = '?x LIKE'"
        );
        assert_eq!(translate("VALUES (?, ?, ?)"), "VALUES ($1, $2, $3)");
        assert_eq!(
            translate("x IN (SELECT value FROM json_each(?5)) AND LIKED = 1"),
            "x IN (SELECT jsonb_array_elements_text(CAST($5 AS jsonb))) AND LIKED = 1"
        );
    }
}
