//! Token signing and verification. The algorithm is pinned per key: HS256 for tokens this service issues,
//! RS256 or EdDSA for configured external issuers; the token header never chooses the key or algorithm.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{Principal, Role};
use crate::config::{Secret, Settings};
use crate::identity::{check_roles, Holder};

/// Tokens are accepted this many seconds past `exp` (clock skew between hosts); revocations outlive it.
pub const LEEWAY_SECS: i64 = 30;
/// No token lives longer than this (`exp - iat`), whoever issued it: 30 days.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 30 * 24 * 3600;

/// The claims of an access token (docs/api.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub department: String,
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The sign-in session (refresh-token family) of tokens from login and refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The account's token epoch when the token was issued (see `revocation`).
    #[serde(default)]
    pub epoch: i64,
}

/// Whom a token is issued to.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub sub: &'a str,
    pub username: Option<&'a str>,
    pub department: &'a str,
    pub roles: &'a [Role],
    pub epoch: i64,
    pub session: Option<&'a str>,
}

struct Verifier {
    issuer: String,
    key: DecodingKey,
    validation: Validation,
    /// The roles this issuer may grant; others in its tokens are ignored.
    grants: Vec<Role>,
}

pub struct TokenKeys {
    issuer: String,
    audience: String,
    encoding: EncodingKey,
    verifiers: Vec<Verifier>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExternalIssuer {
    issuer: String,
    algorithm: String,
    public_key_pem_file: String,
    audience: Option<String>,
    /// The roles the issuer may grant (default: every role but `admin`).
    roles: Option<Vec<String>>,
}

fn validation(alg: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.algorithms = vec![alg];
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    v.validate_exp = true;
    v.validate_nbf = true;
    v.leeway = LEEWAY_SECS as u64;
    v
}

impl TokenKeys {
    pub fn new(secret: &Secret, issuer: &str, audience: &str) -> Self {
        let bytes = secret.expose().as_bytes();
        Self {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            encoding: EncodingKey::from_secret(bytes),
            verifiers: vec![Verifier {
                issuer: issuer.to_string(),
                key: DecodingKey::from_secret(bytes),
                validation: validation(Algorithm::HS256, issuer, audience),
                grants: Role::ALL.to_vec(),
            }],
        }
    }

    /// Keys from the settings, including external issuers listed in `SHUIWU_JWT_EXTERNAL_ISSUERS`.
    pub fn from_settings(settings: &Settings, secret: &Secret) -> Result<Self, String> {
        let mut keys = Self::new(secret, &settings.jwt_issuer, &settings.jwt_audience);
        if let Some(path) = &settings.jwt_external_issuers {
            keys.add_external_from_file(path)?;
        }
        Ok(keys)
    }

    fn add_external_from_file(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let list: Vec<ExternalIssuer> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for ext in list {
            let pem_path = base.join(&ext.public_key_pem_file);
            let pem = std::fs::read(&pem_path).map_err(|e| format!("cannot read {}: {e}", pem_path.display()))?;
            let audience = ext.audience.clone().unwrap_or_else(|| self.audience.clone());
            let grants = match &ext.roles {
                None => Role::ALL.iter().copied().filter(|r| *r != Role::Admin).collect(),
                Some(names) => names
                    .iter()
                    .map(|n| {
                        Role::parse(n)
                            .ok_or_else(|| format!("{}: unknown role {n:?} for {}", path.display(), ext.issuer))
                    })
                    .collect::<Result<_, _>>()?,
            };
            self.add_external(&ext.issuer, &ext.algorithm, &pem, &audience, grants)?;
        }
        Ok(())
    }

    /// Trusts tokens from `issuer` signed with `algorithm` (`RS256` or `EdDSA`) by the holder of this public key,
    /// granting at most the roles `grants`.
    pub fn add_external(
        &mut self,
        issuer: &str,
        algorithm: &str,
        pem: &[u8],
        audience: &str,
        grants: Vec<Role>,
    ) -> Result<(), String> {
        if issuer == self.issuer {
            return Err(format!("external issuer {issuer} has the service's own issuer name"));
        }
        let (alg, key) = match algorithm {
            "RS256" => (Algorithm::RS256, DecodingKey::from_rsa_pem(pem)),
            "EdDSA" => (Algorithm::EdDSA, DecodingKey::from_ed_pem(pem)),
            other => return Err(format!("unsupported algorithm {other} for {issuer} (use RS256 or EdDSA)")),
        };
        let key = key.map_err(|e| format!("bad public key for {issuer}: {e}"))?;
        self.verifiers.push(Verifier {
            issuer: issuer.to_string(),
            key,
            validation: validation(alg, issuer, audience),
            grants,
        });
        Ok(())
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Signs an HS256 access token living `ttl` (at most 30 days); returns the token and its claims.
    pub fn issue(&self, subject: &Subject<'_>, ttl: std::time::Duration) -> (String, Claims) {
        let now = chrono::Utc::now().timestamp();
        let ttl = (ttl.as_secs() as i64).clamp(1, MAX_TOKEN_LIFETIME_SECS);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.sub.to_string(),
            exp: now + ttl,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::now_v7().to_string(),
            department: subject.department.to_string(),
            roles: subject.roles.iter().map(|r| r.as_str().to_string()).collect(),
            username: subject.username.map(str::to_string),
            sid: subject.session.map(str::to_string),
            epoch: subject.epoch,
        };
        (self.sign(&claims), claims)
    }

    /// Signs arbitrary claims with the service key (HS256).
    pub fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing with a byte key cannot fail")
    }

    /// Verifies a token: the verifier is chosen by the (unverified) `iss`, then signature, algorithm,
    /// `iss`, `aud`, `exp` and `nbf` are all checked with that verifier's pinned settings; `iat` may not lie in
    /// the future (beyond the leeway) and no token may live longer than 30 days. Roles the issuer may not grant
    /// are dropped.
    pub fn verify(&self, token: &str) -> Option<Principal> {
        #[derive(Deserialize)]
        struct IssOnly {
            iss: Option<String>,
        }
        let peek = jsonwebtoken::dangerous::insecure_decode::<IssOnly>(token).ok()?;
        let iss = peek.claims.iss?;
        let verifier = self.verifiers.iter().find(|v| v.issuer == iss)?;
        let data = jsonwebtoken::decode::<Claims>(token, &verifier.key, &verifier.validation).ok()?;
        let c = data.claims;
        let now = chrono::Utc::now().timestamp();
        if c.jti.is_empty()
            || c.sub.is_empty()
            || c.iat > now + LEEWAY_SECS
            || c.exp.saturating_sub(c.iat) > MAX_TOKEN_LIFETIME_SECS
        {
            return None;
        }
        let roles: Vec<Role> =
            c.roles.iter().filter_map(|r| Role::parse(r)).filter(|r| verifier.grants.contains(r)).collect();
        // The role rules hold for every token: an issuer's admin holds no business role, and so on.
        let holder = if roles.contains(&Role::Platform) { Holder::Service } else { Holder::Staff };
        if !roles.is_empty() && check_roles(&roles, holder).is_err() {
            return None;
        }
        Some(Principal {
            roles,
            local: c.iss == self.issuer,
            issuer: c.iss,
            session: c.sid,
            epoch: c.epoch,
            sub: c.sub,
            username: c.username,
            department: c.department,
            jti: c.jti,
            iat: c.iat,
            exp: c.exp,
        })
    }
}

/// The HS256 key: from the setting, or from `<data dir>/jwt-secret`, generated there on first use.
pub fn load_jwt_secret(settings: &Settings) -> Result<Secret, String> {
    if let Some(s) = &settings.jwt_secret {
        if s.expose().len() < 32 {
            return Err("SHUIWU_JWT_SECRET must be at least 32 bytes".into());
        }
        return Ok(s.clone());
    }
    let path = settings.data_dir().join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => Ok(s.trim().parse::<Secret>().expect("infallible")),
        Ok(_) => Err(format!("{} holds fewer than 32 bytes", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = super::random_token(48);
            crate::config::write_private_file(&path, &secret)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a JWT signing key");
            Ok(secret.parse::<Secret>().expect("infallible"))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}
