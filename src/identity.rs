//! Who is acting: the bureau's roles and an authenticated principal. A leaf module, so that the audit trail
//! (which records actors) and security (which establishes them) both build on it without depending on each other.

crate::text_enum! {
    /// The bureau's fixed set of roles (API.md §3).
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
}

impl Principal {
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
