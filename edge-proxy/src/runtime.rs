//! A validated configuration compiled into lookup tables. One `Runtime` is current at a time;
//! a reload builds a new one beside it and swaps, so connections already routed keep the
//! `Arc` they started with.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, ConfigError, DefaultAction, Limits};
use crate::limits::per_ip::IpLimits;
use crate::limits::routes::RouteLimits;
use crate::routing::Router;
use crate::upstream::{Group, HealthRegistry};

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub group: Arc<Group>,
    pub proxy_protocol: bool,
    pub limits: RouteLimits,
}

#[derive(Debug)]
pub struct Runtime {
    pub config: Config,
    pub routes: Vec<Arc<Route>>,
    pub groups: Vec<Arc<Group>>,
    router: Router,
    default_route: Option<usize>,
}

impl Runtime {
    pub fn compile(config: Config, health: &HealthRegistry) -> Result<Self, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(m);
        if config.listeners.is_empty() {
            return Err(invalid("at least one [[listener]] is required".into()));
        }
        if let Some(admin) = &config.admin
            && !admin.bind.ip().is_loopback()
        {
            return Err(invalid(format!(
                "admin.bind {} must be a loopback address",
                admin.bind
            )));
        }
        check_limits(&config.limits)?;

        let mut groups = HashMap::new();
        let mut group_list = Vec::new();
        for u in &config.upstreams {
            if u.addresses.is_empty() {
                return Err(invalid(format!("upstream {:?} has no addresses", u.name)));
            }
            let g = Arc::new(Group::new(u, health));
            if groups.insert(u.name.clone(), Arc::clone(&g)).is_some() {
                return Err(invalid(format!("upstream {:?} is defined twice", u.name)));
            }
            group_list.push(g);
        }

        let mut router = Router::default();
        let mut routes = Vec::new();
        let mut names = HashMap::new();
        for (i, r) in config.routes.iter().enumerate() {
            if names.insert(r.name.clone(), i).is_some() {
                return Err(invalid(format!("route {:?} is defined twice", r.name)));
            }
            let group = groups.get(&r.upstream).ok_or_else(|| {
                invalid(format!(
                    "route {:?} names unknown upstream {:?}",
                    r.name, r.upstream
                ))
            })?;
            if r.reserved > r.max_connections {
                return Err(invalid(format!(
                    "route {:?}: reserved exceeds max_connections",
                    r.name
                )));
            }
            for pattern in &r.sni {
                router
                    .insert(pattern, i)
                    .map_err(|e| invalid(format!("route {:?}: {e}", r.name)))?;
            }
            routes.push(Arc::new(Route {
                name: r.name.clone(),
                group: Arc::clone(group),
                proxy_protocol: r.proxy_protocol,
                limits: RouteLimits {
                    max_connections: r.max_connections,
                    reserved: r.reserved,
                },
            }));
        }
        let default_route = match &config.default {
            DefaultAction::Reject => None,
            DefaultAction::Route { route } => Some(
                *names
                    .get(route)
                    .ok_or_else(|| invalid(format!("default route {route:?} is not defined")))?,
            ),
        };
        Ok(Self {
            config,
            routes,
            groups: group_list,
            router,
            default_route,
        })
    }

    /// The route for a server name; `None` (no or unknown SNI) falls to the default action.
    pub fn route_for(&self, sni: Option<&str>) -> Option<&Arc<Route>> {
        let idx = sni
            .and_then(|s| self.router.lookup(s))
            .or(self.default_route)?;
        self.routes.get(idx)
    }

    pub fn ip_limits(&self) -> IpLimits {
        let l = &self.config.limits;
        IpLimits {
            max_connections: l.per_ip_max_connections,
            rate: l.per_ip_rate,
            burst: l.per_ip_burst,
        }
    }
}

fn check_limits(l: &Limits) -> Result<(), ConfigError> {
    let bad = |what: &str| {
        Err(ConfigError::Invalid(format!(
            "limits.{what} must be positive"
        )))
    };
    if l.max_hello_bytes < 512 {
        return Err(ConfigError::Invalid(
            "limits.max_hello_bytes must be at least 512".into(),
        ));
    }
    if l.max_handshakes == 0 {
        return bad("max_handshakes");
    }
    if l.handshake_timeout_ms == 0 || l.connect_timeout_ms == 0 || l.idle_timeout_ms == 0 {
        return bad("*_timeout_ms");
    }
    if !(l.per_ip_rate.is_finite()
        && l.per_ip_rate > 0.0
        && l.per_ip_burst.is_finite()
        && l.per_ip_burst >= 1.0)
    {
        return bad("per_ip_rate / per_ip_burst");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        [[listener]]
        bind = "127.0.0.1:0"
        [[upstream]]
        name = "a"
        addresses = ["127.0.0.1:1"]
        [[upstream]]
        name = "p"
        addresses = ["127.0.0.1:2"]
        [[route]]
        name = "admin"
        sni = ["admin.example.com"]
        upstream = "a"
        [[route]]
        name = "public"
        sni = ["*.example.com"]
        upstream = "p"
    "#;

    fn compile(extra: &str) -> Result<Runtime, ConfigError> {
        Runtime::compile(
            Config::from_toml(&format!("{BASE}{extra}"))?,
            &HealthRegistry::default(),
        )
    }

    #[test]
    fn routes_exact_wildcard_and_default() {
        let rt = compile("[default]\naction = \"route\"\nroute = \"public\"\n").expect("valid");
        let name = |sni| rt.route_for(sni).map(|r| r.name.as_str());
        assert_eq!(name(Some("admin.example.com")), Some("admin"));
        assert_eq!(name(Some("www.example.com")), Some("public"));
        assert_eq!(name(Some("other.org")), Some("public"));
        assert_eq!(name(None), Some("public"));
        let rt = compile("").expect("valid");
        assert!(rt.route_for(Some("other.org")).is_none());
        assert!(rt.route_for(None).is_none());
    }

    #[test]
    fn inconsistent_configs_are_refused() {
        for extra in [
            "[default]\naction = \"route\"\nroute = \"nope\"\n",
            "[admin]\nbind = \"0.0.0.0:9901\"\n",
            "[[route]]\nname = \"x\"\nsni = [\"x.org\"]\nupstream = \"missing\"\n",
            "[[route]]\nname = \"admin\"\nsni = [\"y.org\"]\nupstream = \"a\"\n",
            "[[route]]\nname = \"dup\"\nsni = [\"ADMIN.example.com\"]\nupstream = \"a\"\n",
            "[[route]]\nname = \"r\"\nsni = [\"r.org\"]\nupstream = \"a\"\nreserved = 5\nmax_connections = 2\n",
            "[limits]\nper_ip_rate = 0.0\n",
        ] {
            assert!(
                matches!(compile(extra), Err(ConfigError::Invalid(_))),
                "accepted:\n{extra}"
            );
        }
    }
}
