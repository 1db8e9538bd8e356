//! Optional JWT validation, for teams with an identity provider.
//!
//! Configured by `KPI_JWT_ISSUER` (with `KPI_JWT_AUDIENCE` and a key):
//! HS256 with the shared secret in `KPI_JWT_HS256_SECRET_FILE`, and/or
//! RS256 or ES256 with the PEM public key in `KPI_JWT_PUBLIC_KEY_FILE`.
//! A token must be signed by one of them with the algorithm its key is for
//! (no `none`, no algorithm confusion), carry `exp`, `iss` and `aud`
//! matching the settings (clock skew up to [`super::JWT_LEEWAY`]), a tenant
//! id in the tenant claim and a role in the role claim. JWT callers are
//! bound to exactly one tenant (`*` is for API keys only).

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};
use tonic::Status;

use super::{
    AuthError, Caller, JWT_HS256_SECRET_FILE_VAR, JWT_LEEWAY, JWT_PUBLIC_KEY_FILE_VAR, JwtSettings,
    Role, TenantScope,
};
use crate::names;

/// Whether `token` has the shape of a compact JWS: three non-empty
/// dot-separated parts.
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3 && parts.iter().all(|part| !part.is_empty())
}

/// A verification key and the algorithm it is for.
struct VerifyingKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Validates JWTs against the configured keys and claims.
pub struct JwtValidator {
    keys: Vec<VerifyingKey>,
    issuer: String,
    audience: String,
    tenant_claim: String,
    role_claim: String,
}

impl std::fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtValidator")
            .field(
                "algorithms",
                &self.keys.iter().map(|k| k.algorithm).collect::<Vec<_>>(),
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("tenant_claim", &self.tenant_claim)
            .field("role_claim", &self.role_claim)
            .finish()
    }
}

impl JwtValidator {
    /// Reads the key files named by `settings`.
    pub fn from_settings(settings: &JwtSettings) -> Result<JwtValidator, AuthError> {
        let mut keys = Vec::new();
        if let Some(path) = &settings.hs256_secret_file {
            let secret = read(JWT_HS256_SECRET_FILE_VAR, path)?;
            let secret = secret.trim_ascii();
            if secret.len() < 32 {
                return Err(AuthError::JwtKey {
                    key: JWT_HS256_SECRET_FILE_VAR,
                    reason: "an HS256 secret must be at least 32 bytes".to_owned(),
                });
            }
            keys.push(VerifyingKey {
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret),
            });
        }
        if let Some(path) = &settings.public_key_file {
            keys.push(public_key(&read(JWT_PUBLIC_KEY_FILE_VAR, path)?)?);
        }
        Ok(JwtValidator {
            keys,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            tenant_claim: settings.tenant_claim.clone(),
            role_claim: settings.role_claim.clone(),
        })
    }

    /// The caller `token` stands for, or `UNAUTHENTICATED` saying why not.
    pub fn validate(&self, token: &str) -> Result<Caller, Status> {
        let header = decode_header(token)
            .map_err(|_| Status::unauthenticated("the bearer token is not a readable JWT"))?;
        let verifying = self
            .keys
            .iter()
            .find(|k| k.algorithm == header.alg)
            .ok_or_else(|| {
                Status::unauthenticated(format!(
                    "JWT algorithm {:?} is not accepted here",
                    header.alg
                ))
            })?;
        let claims =
            decode::<Map<String, Value>>(token, &verifying.key, &self.validation(verifying))
                .map_err(|err| Status::unauthenticated(format!("invalid JWT: {}", reason(&err))))?
                .claims;
        self.caller(&claims)
    }

    fn validation(&self, key: &VerifyingKey) -> Validation {
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = JWT_LEEWAY.as_secs();
        validation
    }

    fn caller(&self, claims: &Map<String, Value>) -> Result<Caller, Status> {
        let tenant = claims
            .get(&self.tenant_claim)
            .and_then(Value::as_str)
            .filter(|t| names::is_valid_tenant_id(t))
            .ok_or_else(|| {
                Status::unauthenticated(format!(
                    "the JWT has no tenant id in its `{}` claim",
                    self.tenant_claim
                ))
            })?;
        let role: Role = claims
            .get(&self.role_claim)
            .and_then(Value::as_str)
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| {
                Status::unauthenticated(format!(
                    "the JWT has no role (reader, writer, admin or service) in its `{}` claim",
                    self.role_claim
                ))
            })?;
        let subject = claims.get("sub").and_then(Value::as_str).unwrap_or("-");
        Ok(Caller {
            tenant: TenantScope::One(tenant.to_owned()),
            role,
            key_id: format!("jwt:{subject}"),
        })
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, AuthError> {
    std::fs::read(path).map_err(|source| AuthError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

/// An RS256 key if the PEM is RSA, else an ES256 key if it is P-256.
fn public_key(pem: &[u8]) -> Result<VerifyingKey, AuthError> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok(VerifyingKey {
            algorithm: Algorithm::RS256,
            key,
        });
    }
    DecodingKey::from_ec_pem(pem)
        .map(|key| VerifyingKey {
            algorithm: Algorithm::ES256,
            key,
        })
        .map_err(|_| AuthError::JwtKey {
            key: JWT_PUBLIC_KEY_FILE_VAR,
            reason: "not a PEM RSA (RS256) or P-256 EC (ES256) public key".to_owned(),
        })
}

/// A short reason for a failed validation, safe to tell the caller.
fn reason(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::ExpiredSignature => "expired".to_owned(),
        ErrorKind::ImmatureSignature => "not valid yet".to_owned(),
        ErrorKind::InvalidIssuer => "wrong issuer".to_owned(),
        ErrorKind::InvalidAudience => "wrong audience".to_owned(),
        ErrorKind::InvalidSignature => "bad signature".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing the `{claim}` claim"),
        ErrorKind::InvalidAlgorithm => "algorithm does not match the key".to_owned(),
        _ => "malformed".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    /// Runs the `openssl` CLI in `dir`.
    fn openssl(dir: &Path, args: &[&str]) {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    }

    fn settings(public_key_file: PathBuf) -> JwtSettings {
        JwtSettings {
            issuer: "https://idp".to_owned(),
            audience: "kpi".to_owned(),
            hs256_secret_file: None,
            public_key_file: Some(public_key_file),
            tenant_claim: "org".to_owned(),
            role_claim: "kpi_role".to_owned(),
        }
    }

    fn claims() -> serde_json::Value {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 600;
        json!({"iss": "https://idp", "aud": "kpi", "exp": exp, "org": "acme", "kpi_role": "writer", "sub": "bot"})
    }

    /// RS256 and ES256 with PEM keys made by openssl, custom claim names,
    /// and no algorithm confusion: an HS256 token "signed" with the public
    /// key is refused.
    #[test]
    fn public_key_algorithms() {
        let dir = crate::auth::tests::tempfile_dir();
        openssl(
            &dir,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "rsa.pem",
            ],
        );
        openssl(
            &dir,
            &["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub.pem"],
        );
        openssl(
            &dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "ec.pem",
            ],
        );
        openssl(
            &dir,
            &["pkey", "-in", "ec.pem", "-pubout", "-out", "ec.pub.pem"],
        );
        let read = |name: &str| std::fs::read(dir.join(name)).expect("key file");
        for (algorithm, private, public, encoding) in [
            (
                Algorithm::RS256,
                "rsa.pem",
                "rsa.pub.pem",
                EncodingKey::from_rsa_pem(&read("rsa.pem")),
            ),
            (
                Algorithm::ES256,
                "ec.pem",
                "ec.pub.pem",
                EncodingKey::from_ec_pem(&read("ec.pem")),
            ),
        ] {
            let validator = JwtValidator::from_settings(&settings(dir.join(public))).expect(public);
            let key = encoding.expect(private);
            let token = encode(&Header::new(algorithm), &claims(), &key).expect("signed");
            let caller = validator.validate(&token).expect("valid");
            assert_eq!(caller.tenant, TenantScope::One("acme".to_owned()));
            assert_eq!(caller.role, Role::Writer);
            assert_eq!(caller.key_id, "jwt:bot");
            let confused = encode(
                &Header::new(Algorithm::HS256),
                &claims(),
                &EncodingKey::from_secret(&read(public)),
            )
            .expect("signed");
            let status = validator
                .validate(&confused)
                .expect_err("algorithm confusion");
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
        }
        std::fs::remove_dir_all(dir).expect("clean up");
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("kpi_0123"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b.c.d"));
    }
}
