//! Resource names, page sizes and page tokens, parsed the same way by every
//! service (AIP-122/158 style).
//!
//! - Parents are `tenants/{tenant}`; tenant ids match `[a-z0-9][a-z0-9_-]{0,62}`.
//! - Children are `tenants/{tenant}/{collection}/{key}`; keys match
//!   `[a-z0-9][a-z0-9_]{0,62}`.
//! - Page tokens are opaque: base64url of a version tag and the last key seen.
//!
//! Every error is `INVALID_ARGUMENT` with a `google.rpc.BadRequest` violation
//! on the request field that was given (read it back with
//! [`crate::status::field_violations`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::Status;

use crate::status::invalid_field;

/// The collection segment every parent starts with.
pub const TENANTS: &str = "tenants";

/// Longest tenant id or key, in bytes.
pub const MAX_ID_LEN: usize = 63;

/// Marks page tokens of this format, so other base64 strings are rejected.
const PAGE_TOKEN_TAG: &str = "k1:";

/// Longest value echoed back in an error description.
const SHOWN_MAX: usize = 80;

/// Parses `tenants/{tenant}` and returns the tenant id.
pub fn parse_parent(field: &str, value: &str) -> Result<String, Status> {
    let tenant = value
        .strip_prefix(TENANTS)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|tenant| !tenant.contains('/'))
        .ok_or_else(|| {
            invalid_field(
                field,
                format!("must look like `tenants/{{tenant}}`, got {}", shown(value)),
            )
        })?;
    check_tenant(field, tenant)?;
    Ok(tenant.to_owned())
}

/// Parses `tenants/{tenant}/{collection}/{key}` and returns `(tenant, key)`.
pub fn parse_child(field: &str, value: &str, collection: &str) -> Result<(String, String), Status> {
    let shape_error = || {
        invalid_field(
            field,
            format!(
                "must look like `tenants/{{tenant}}/{collection}/{{key}}`, got {}",
                shown(value)
            ),
        )
    };
    let mut parts = value.split('/');
    let (Some(TENANTS), Some(tenant), Some(found), Some(key), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(shape_error());
    };
    if found != collection {
        return Err(shape_error());
    }
    check_tenant(field, tenant)?;
    if !is_valid_key(key) {
        return Err(invalid_field(
            field,
            format!(
                "key {} must be 1-{MAX_ID_LEN} of [a-z0-9_], starting with a letter or digit",
                shown(key)
            ),
        ));
    }
    Ok((tenant.to_owned(), key.to_owned()))
}

/// `tenants/{tenant}`.
pub fn parent_name(tenant: &str) -> String {
    format!("{TENANTS}/{tenant}")
}

/// `tenants/{tenant}/{collection}/{key}`.
pub fn child_name(tenant: &str, collection: &str, key: &str) -> String {
    format!("{TENANTS}/{tenant}/{collection}/{key}")
}

/// Whether `id` is a valid tenant id: `[a-z0-9][a-z0-9_-]{0,62}`.
pub fn is_valid_tenant_id(id: &str) -> bool {
    is_valid_id(id, |c| c == '_' || c == '-')
}

/// Whether `key` is a valid resource key: `[a-z0-9][a-z0-9_]{0,62}`.
pub fn is_valid_key(key: &str) -> bool {
    is_valid_id(key, |c| c == '_')
}

/// The page size to use: 0 means `default`, more than `max` is capped to
/// `max`, negative is `INVALID_ARGUMENT` on `field`.
pub fn page_size(field: &str, requested: i32, default: u32, max: u32) -> Result<u32, Status> {
    match u32::try_from(requested) {
        Ok(0) => Ok(default.min(max)),
        Ok(size) => Ok(size.min(max)),
        Err(_) => Err(invalid_field(
            field,
            format!("must not be negative, got {requested}"),
        )),
    }
}

/// Encodes the last key seen into an opaque page token.
pub fn encode_page_token(offset_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PAGE_TOKEN_TAG}{offset_key}"))
}

/// Decodes a token made by [`encode_page_token`] back into the last key seen.
///
/// An empty token (the first page) decodes to an empty key; anything not made
/// by [`encode_page_token`] is `INVALID_ARGUMENT` on `field`.
pub fn decode_page_token(field: &str, token: &str) -> Result<String, Status> {
    if token.is_empty() {
        return Ok(String::new());
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(PAGE_TOKEN_TAG).map(str::to_owned))
        .ok_or_else(|| {
            invalid_field(
                field,
                "is not a page token returned by a previous list call",
            )
        })
}

fn check_tenant(field: &str, tenant: &str) -> Result<(), Status> {
    if is_valid_tenant_id(tenant) {
        Ok(())
    } else {
        Err(invalid_field(
            field,
            format!(
                "tenant id {} must be 1-{MAX_ID_LEN} of [a-z0-9_-], starting with a letter or digit",
                shown(tenant)
            ),
        ))
    }
}

fn is_valid_id(id: &str, extra: impl Fn(char) -> bool) -> bool {
    let mut chars = id.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    id.len() <= MAX_ID_LEN && is_lower_alnum(first) && chars.all(|c| is_lower_alnum(c) || extra(c))
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `value` quoted for an error description, shortened if long.
fn shown(value: &str) -> String {
    if value.len() <= SHOWN_MAX {
        format!("{value:?}")
    } else {
        let mut end = SHOWN_MAX;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        format!("{:?}…", &value[..end])
    }
}
