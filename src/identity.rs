//! Who is acting: the bureau's roles and an authenticated principal. A leaf module, so that the audit trail
//! (which records actors) and security (which establishes them) both build on it without depending on each other.

crate::text_enum! {
    /// The bureau's fixed set of roles (docs/api.md).
    pub enum Role {
        Admin = ("admin", "系统管理员（办公室/信息中心）"),
        Leader = ("leader", "局领导"),
        WaterResources = ("water_resources", "水资源管理科"),
        WaterSaving = ("water_saving", "节约用水办公室"),
        Finance = ("finance", "规划财务科"),
        Enforcement = ("enforcement", "水政监察大队"),
        Legal = ("legal", "政策法规科"),
        Inspector = ("inspector", "巡查人员"),
        Platform = ("platform", "省级平台（服务账号）"),
        Auditor = ("auditor", "纪检审计"),
    }
}

impl Role {
    /// Roles stored as a comma-separated column.
    pub fn join(roles: &[Role]) -> String {
        roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
    }

    pub fn split(s: &str) -> Vec<Role> {
        s.split(',').filter_map(|r| Role::parse(r.trim())).collect()
    }
}

/// Who made a request, as established from a valid, unrevoked token.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's `sub`.
    pub sub: String,
    /// The token's `iss`.
    pub issuer: String,
    /// Issued by this service (an account or service account of its own), not by an external issuer.
    pub local: bool,
    pub username: Option<String>,
    pub department: String,
    pub roles: Vec<Role>,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    /// The sign-in session (refresh-token family) the token belongs to, for tokens from login or refresh.
    pub session: Option<String>,
    /// The account's token epoch the token was issued in.
    pub epoch: i64,
}

impl Principal {
    /// How records name who entered something (`reported_by`, `recorded_by`): the username (or subject), with the
    /// issuer beside it for tokens of external issuers; bounded and escaped.
    pub fn signature(&self) -> String {
        let name = self.username.clone().unwrap_or_else(|| self.sub.clone());
        crate::domain::text::untrusted(&if self.local { name } else { format!("{name} ({})", self.issuer) }, 100)
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        self.roles.iter().any(|r| roles.contains(r))
    }

    /// The caller's identity across issuers: the subject of a local token, `issuer#subject` for an external
    /// issuer's, so that an external subject can never stand for a local account (revocation, idempotency keys,
    /// the audit trail).
    pub fn scope(&self) -> String {
        if self.local {
            self.sub.clone()
        } else {
            format!("{}#{}", self.issuer, self.sub)
        }
    }
}

pub use crate::messages::RolesRule;

/// Who holds a set of roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// A member of staff (an account that signs in with a password).
    Staff,
    /// A service account (client credentials: provincial platforms).
    Service,
}

/// The role combinations docs/api.md allows: at least one role; `admin` with no business role beside it (only
/// `auditor` may join it: separation of duties); `platform` on service accounts only; a service account never
/// `admin` or `leader`. Returns what is wrong otherwise.
pub fn check_roles(roles: &[Role], holder: Holder) -> Result<(), RolesRule> {
    if roles.is_empty() {
        return Err(RolesRule::AtLeastOne);
    }
    if roles.contains(&Role::Admin) {
        if let Some(r) = roles.iter().find(|r| !matches!(r, Role::Admin | Role::Auditor)) {
            return Err(RolesRule::AdminAlone(r.as_str()));
        }
    }
    match holder {
        Holder::Staff if roles.contains(&Role::Platform) => Err(RolesRule::PlatformForServices),
        Holder::Service if roles.iter().any(|r| matches!(r, Role::Admin | Role::Leader)) => {
            Err(RolesRule::ServiceNotAdminOrLeader)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    #[test]
    fn role_combinations() {
        assert!(check_roles(&[Admin], Holder::Staff).is_ok());
        assert!(check_roles(&[Admin, Auditor], Holder::Staff).is_ok());
        assert!(check_roles(&[Admin, WaterResources], Holder::Staff).is_err());
        assert!(check_roles(&[Admin, Leader], Holder::Staff).is_err());
        assert!(check_roles(&[WaterResources, Inspector], Holder::Staff).is_ok());
        assert!(check_roles(&[Platform], Holder::Staff).is_err());
        assert!(check_roles(&[Platform], Holder::Service).is_ok());
        assert!(check_roles(&[Leader], Holder::Service).is_err());
        assert!(check_roles(&[Admin], Holder::Service).is_err());
        assert!(check_roles(&[], Holder::Service).is_err());
    }
}
