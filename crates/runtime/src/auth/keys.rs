//! The API-key table (`KPI_API_KEYS_FILE`).
//!
//! One key per line: `<key-id> <tenant|*> <role> <sha256-hex-of-token>`;
//! blank lines and lines starting with `#` are ignored. Only the SHA-256 of
//! a token is stored, so the file (a Kubernetes Secret) does not hold the
//! tokens themselves. `*` binds a key to every tenant and is accepted for
//! `admin` and `service` keys only. A presented token is hashed and compared
//! with every entry in constant time.
//!
//! [`key_line`] prints the line for a token (`kpictl hash-key`) and
//! [`generate_token`] makes a random one (`kpictl up` / `demo`).

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{AuthError, Caller, Role, TenantScope};
use crate::names;

/// Length of a SHA-256 digest.
const DIGEST_LEN: usize = 32;
/// Random bytes in a generated token (256 bits).
const TOKEN_BYTES: usize = 32;
/// Prefix of generated tokens, so they are recognisable in a leaked log.
const TOKEN_PREFIX: &str = "kpi_";

/// One line of the key file.
#[derive(Clone)]
struct KeyEntry {
    id: String,
    tenant: TenantScope,
    role: Role,
    digest: [u8; DIGEST_LEN],
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The loaded API keys.
#[derive(Debug, Clone, Default)]
pub struct KeyTable {
    entries: Vec<KeyEntry>,
}

impl KeyTable {
    /// Reads and parses the key file at `path`.
    pub fn load(path: &Path) -> Result<KeyTable, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            key: super::API_KEYS_FILE_VAR,
            path: path.to_owned(),
            source,
        })?;
        KeyTable::parse(&text).map_err(|(line, reason)| AuthError::KeyFile {
            path: path.to_owned(),
            line,
            reason,
        })
    }

    /// Parses key-file text; on error the 1-based line and the reason.
    pub fn parse(text: &str) -> Result<KeyTable, (usize, String)> {
        let mut entries: Vec<KeyEntry> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = parse_line(line).map_err(|reason| (index + 1, reason))?;
            if entries.iter().any(|e| e.id == entry.id) {
                return Err((index + 1, format!("key id {:?} appears twice", entry.id)));
            }
            entries.push(entry);
        }
        Ok(KeyTable { entries })
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller whose key hashes like `token`, comparing every entry in
    /// constant time (no early exit that would tell how much matched).
    pub fn find(&self, token: &str) -> Option<Caller> {
        let digest = sha256(token);
        let mut found = None;
        for entry in &self.entries {
            if constant_time_eq(&entry.digest, &digest) {
                found = Some(entry);
            }
        }
        found.map(|entry| Caller {
            tenant: entry.tenant.clone(),
            role: entry.role,
            key_id: entry.id.clone(),
        })
    }
}

fn parse_line(line: &str) -> Result<KeyEntry, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [id, tenant, role, hash] = fields[..] else {
        return Err(format!(
            "expected `<key-id> <tenant|*> <role> <sha256-hex>`, got {} fields",
            fields.len()
        ));
    };
    let role: Role = role.parse()?;
    let tenant = if tenant == "*" {
        if !role.may_span_tenants() {
            return Err(format!(
                "tenant `*` (every tenant) is for admin and service keys only, not {role}"
            ));
        }
        TenantScope::All
    } else if names::is_valid_tenant_id(tenant) {
        TenantScope::One(tenant.to_owned())
    } else {
        return Err(format!("{tenant:?} is not a tenant id nor `*`"));
    };
    let digest = parse_hex_digest(hash)
        .ok_or_else(|| format!("the hash of key {id:?} is not 64 hex digits (SHA-256)"))?;
    Ok(KeyEntry {
        id: id.to_owned(),
        tenant,
        role,
        digest,
    })
}

fn parse_hex_digest(hex: &str) -> Option<[u8; DIGEST_LEN]> {
    if hex.len() != DIGEST_LEN * 2 || !hex.is_ascii() {
        return None;
    }
    let mut digest = [0u8; DIGEST_LEN];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(digest)
}

fn sha256(token: &str) -> [u8; DIGEST_LEN] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal in time independent of where the first difference is.
fn constant_time_eq(a: &[u8; DIGEST_LEN], b: &[u8; DIGEST_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The lowercase hex SHA-256 of `token`, as the key file stores it.
pub fn token_hash(token: &str) -> String {
    sha256(token).iter().map(|b| format!("{b:02x}")).collect()
}

/// The key-file line for `token`.
pub fn key_line(key_id: &str, tenant: &str, role: Role, token: &str) -> String {
    format!("{key_id} {tenant} {role} {}", token_hash(token))
}

/// A fresh random token (`kpi_` and 64 hex digits) from the OS generator.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{TOKEN_PREFIX}{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_finds_keys_by_hash() {
        let text = format!(
            "# keys\n\n{}\n{}\n",
            key_line("acme-reader", "acme", Role::Reader, "t1"),
            key_line("svc", "*", Role::Service, "t2"),
        );
        let table = KeyTable::parse(&text).expect("valid");
        let reader = table.find("t1").expect("t1 is a key");
        assert_eq!(reader.tenant, TenantScope::One("acme".to_owned()));
        assert_eq!(reader.role, Role::Reader);
        assert_eq!(reader.key_id, "acme-reader");
        assert_eq!(table.find("t2").map(|c| c.tenant), Some(TenantScope::All));
        assert_eq!(table.find("t3"), None);
    }

    #[test]
    fn rejects_bad_lines() {
        let hash = token_hash("x");
        for (text, expected) in [
            ("a acme reader".to_owned(), "expected"),
            (format!("a * reader {hash}"), "admin and service keys only"),
            (format!("a Acme! reader {hash}"), "not a tenant id"),
            (format!("a acme boss {hash}"), "unknown role"),
            ("a acme reader abc".to_owned(), "64 hex digits"),
            (
                format!("a acme reader {hash}\na acme admin {hash}"),
                "twice",
            ),
        ] {
            let err = KeyTable::parse(&text).expect_err(&text);
            assert!(err.1.contains(expected), "{text}: {err:?}");
        }
    }

    #[test]
    fn generated_tokens_differ() {
        let a = generate_token().expect("os rng");
        let b = generate_token().expect("os rng");
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 2 * TOKEN_BYTES);
    }
}
