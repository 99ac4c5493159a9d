//! What an access token says: who (`sub`), in what role, for whom it was issued and until when.

use serde::{Deserialize, Serialize};

/// Roles in order of what they may do: a protostar keeps a stargazer's abilities, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Guest,
    Stargazer,
    Protostar,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Guest => "guest",
            Self::Stargazer => "stargazer",
            Self::Protostar => "protostar",
            Self::Admin => "admin",
        }
    }

    /// Whether this role has every ability of `other`.
    pub fn includes(self, other: Role) -> bool {
        self >= other
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn roles_include_the_ones_below() {
        assert!(Role::Protostar.includes(Role::Stargazer));
        assert!(Role::Admin.includes(Role::Protostar));
        assert!(!Role::Stargazer.includes(Role::Protostar));
        assert!(!Role::Guest.includes(Role::Stargazer));
    }
}
