//! Token signing and verification. The algorithm is pinned per key: HS256 for tokens this service issues,
//! RS256 or EdDSA for configured external issuers; the token header never chooses the algorithm.
//!
//! The service's own keys rotate (docs/operations.md, "Rotating the signing key"): `SHUIWU_JWT_KEYS` lists
//! `kid:secret` pairs, the first signs and every one verifies, so a new key is first listed second everywhere, then
//! moved first, and the old one removed once its tokens have expired — nobody is signed out. A token's `kid` header
//! picks the key it is checked with; a token without one (or with a kid no longer listed) is checked against each
//! listed key, so that tokens signed before kids existed stay valid while their key is listed.

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
    /// The key id of the service's own keys.
    kid: Option<String>,
    key: DecodingKey,
    validation: Validation,
    /// The roles this issuer may grant; others in its tokens are ignored.
    grants: Vec<Role>,
}

pub struct TokenKeys {
    issuer: String,
    audience: String,
    /// The signing key and its id.
    encoding: EncodingKey,
    kid: String,
    verifiers: Vec<Verifier>,
}

/// One of the service's HS256 keys.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub kid: String,
    pub secret: Secret,
}

impl SigningKey {
    /// A key known by an id derived from it (the first 8 hex digits of its SHA-256): the single key of
    /// `SHUIWU_JWT_SECRET` or of the generated key file.
    pub fn derived(secret: &Secret) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(secret.expose().as_bytes());
        Self { kid: hex::encode(&digest[..4]), secret: secret.clone() }
    }
}

/// Parses `SHUIWU_JWT_KEYS`: `kid:secret` pairs separated by commas (or new lines), the signing key first; ids
/// of 1–32 letters, digits, `.`, `_` or `-`, none twice; secrets of at least 32 bytes.
pub fn parse_keys(list: &str) -> Result<Vec<SigningKey>, String> {
    let mut keys: Vec<SigningKey> = Vec::new();
    for item in list.split([',', '\n']).map(str::trim).filter(|i| !i.is_empty()) {
        let (kid, secret) = item.split_once(':').ok_or("SHUIWU_JWT_KEYS: each key is kid:secret")?;
        let kid = kid.trim();
        let valid_kid = (1..=32).contains(&kid.len())
            && kid.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid_kid {
            return Err(format!("SHUIWU_JWT_KEYS: key id {kid:?} must be 1-32 letters, digits, '.', '_' or '-'"));
        }
        if keys.iter().any(|k| k.kid == kid) {
            return Err(format!("SHUIWU_JWT_KEYS: key id {kid} is listed twice"));
        }
        if secret.trim().len() < 32 {
            return Err(format!("SHUIWU_JWT_KEYS: the key {kid} has fewer than 32 bytes"));
        }
        keys.push(SigningKey { kid: kid.to_string(), secret: secret.trim().parse().expect("infallible") });
    }
    if keys.is_empty() {
        return Err("SHUIWU_JWT_KEYS lists no key".into());
    }
    Ok(keys)
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
    /// One HS256 key (its id derived from it).
    pub fn new(secret: &Secret, issuer: &str, audience: &str) -> Self {
        Self::with_keys(&[SigningKey::derived(secret)], issuer, audience)
    }

    /// The service's keys: the first signs, all verify. `keys` is not empty.
    pub fn with_keys(keys: &[SigningKey], issuer: &str, audience: &str) -> Self {
        let signing = keys.first().expect("at least one signing key");
        Self {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            encoding: EncodingKey::from_secret(signing.secret.expose().as_bytes()),
            kid: signing.kid.clone(),
            verifiers: keys
                .iter()
                .map(|k| Verifier {
                    issuer: issuer.to_string(),
                    kid: Some(k.kid.clone()),
                    key: DecodingKey::from_secret(k.secret.expose().as_bytes()),
                    validation: validation(Algorithm::HS256, issuer, audience),
                    grants: Role::ALL.to_vec(),
                })
                .collect(),
        }
    }

    /// The id of the key tokens are signed with now.
    pub fn signing_kid(&self) -> &str {
        &self.kid
    }

    /// Keys from the settings, including external issuers listed in `SHUIWU_JWT_EXTERNAL_ISSUERS`.
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let own = load_signing_keys(settings)?;
        let mut keys = Self::with_keys(&own, &settings.jwt_issuer, &settings.jwt_audience);
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
            kid: None,
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
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("HS256 signing with a byte key cannot fail")
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
        // The issuer's keys; the one the header names, when it names one still listed.
        let kid = jsonwebtoken::decode_header(token).ok()?.kid;
        let mut candidates: Vec<&Verifier> = self.verifiers.iter().filter(|v| v.issuer == iss).collect();
        if let Some(named) = candidates.iter().find(|v| v.kid.is_some() && v.kid == kid) {
            candidates = vec![*named];
        }
        let (verifier, data) = candidates
            .into_iter()
            .find_map(|v| jsonwebtoken::decode::<Claims>(token, &v.key, &v.validation).ok().map(|d| (v, d)))?;
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

/// The service's HS256 keys, the signing key first: `SHUIWU_JWT_KEYS`, else the single key of
/// `SHUIWU_JWT_SECRET`, else the one in `<data dir>/jwt-secret` (generated there on first use).
pub fn load_signing_keys(settings: &Settings) -> Result<Vec<SigningKey>, String> {
    match (&settings.jwt_keys, &settings.jwt_secret) {
        (Some(_), Some(_)) => Err("set SHUIWU_JWT_KEYS or SHUIWU_JWT_SECRET, not both".into()),
        (Some(list), None) => parse_keys(list.expose()),
        (None, _) => Ok(vec![SigningKey::derived(&load_jwt_secret(settings)?)]),
    }
}

/// The single HS256 key: from the setting, or from `<data dir>/jwt-secret`, generated there on first use.
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

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn subject() -> Subject<'static> {
        Subject { sub: "s", username: None, department: "office", roles: &[], epoch: 0, session: None }
    }

    #[test]
    fn one_way_of_giving_keys() {
        let mut settings = crate::config::Settings::from_env();
        settings.jwt_keys = Some(format!("2026a:{A}").parse().unwrap());
        settings.jwt_secret = Some(A.parse().unwrap());
        assert!(load_signing_keys(&settings).unwrap_err().contains("not both"));
        settings.jwt_secret = None;
        assert_eq!(load_signing_keys(&settings).unwrap().len(), 1);
    }

    #[test]
    fn key_lists_parse_strictly() {
        let keys = parse_keys(&format!("2026b:{B}, 2026a:{A}")).unwrap();
        assert_eq!(keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["2026b", "2026a"]);
        assert!(parse_keys(&format!("k:{A},k:{B}")).unwrap_err().contains("twice"));
        assert!(parse_keys("k:short").unwrap_err().contains("32 bytes"));
        assert!(parse_keys(&format!("bad kid:{A}")).is_err());
        assert!(parse_keys(A).is_err());
        assert!(parse_keys(" , ").is_err());
    }

    #[test]
    fn the_first_key_signs_every_listed_key_verifies() {
        let keys = |list: &str| TokenKeys::with_keys(&parse_keys(list).unwrap(), "shuiwu", "shuiwu-api");
        let old = keys(&format!("a:{A}"));
        let both = keys(&format!("b:{B},a:{A}"));
        let new = keys(&format!("b:{B}"));
        let (t_old, _) = old.issue(&subject(), std::time::Duration::from_secs(60));
        let (t_new, _) = both.issue(&subject(), std::time::Duration::from_secs(60));
        assert_eq!(jsonwebtoken::decode_header(&t_new).unwrap().kid.as_deref(), Some("b"));
        assert!(both.verify(&t_old).is_some() && both.verify(&t_new).is_some());
        assert!(new.verify(&t_new).is_some());
        assert!(new.verify(&t_old).is_none(), "a removed key's tokens are refused");
        assert!(old.verify(&t_new).is_none());
        // A token from before kids (no header kid) verifies while its key is listed.
        let claims = jsonwebtoken::dangerous::insecure_decode::<Claims>(&t_old).unwrap().claims;
        let legacy =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(A.as_bytes()))
                .unwrap();
        assert!(both.verify(&legacy).is_some() && new.verify(&legacy).is_none());
        // A kid naming one key does not let another key's signature through.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("b".into());
        let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(A.as_bytes())).unwrap();
        assert!(both.verify(&forged).is_none());
    }
}
