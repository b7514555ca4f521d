//! Parses Kubernetes API paths into what they address.

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Version,
    /// `/api`: the legacy group's versions.
    CoreVersions,
    /// `/apis`: every named group.
    Groups,
    /// `/api/v1` or `/apis/{group}/{version}`: the resources of one group version.
    Resources {
        group: String,
        version: String,
    },
    /// `/openapi/v2` and `/openapi/v3`.
    OpenApi,
    Resource(Target),
}

/// A collection, an object, or an object's subresource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

pub fn parse(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        ["version"] => Some(Route::Version),
        ["api"] => Some(Route::CoreVersions),
        ["apis"] => Some(Route::Groups),
        ["openapi", ..] => Some(Route::OpenApi),
        ["api", version] => Some(Route::Resources {
            group: String::new(),
            version: (*version).into(),
        }),
        ["apis", group, version] => Some(Route::Resources {
            group: (*group).into(),
            version: (*version).into(),
        }),
        ["api", version, rest @ ..] => resource("", version, rest),
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => None,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Option<Route> {
    let target = |plural: &str, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Some(Route::Resource(Target {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            namespace: namespace.map(Into::into),
            name: name.map(Into::into),
            subresource: sub.map(Into::into),
        }))
    };
    match rest {
        [plural] => target(plural, None, None, None),
        [plural, name] => target(plural, None, Some(name), None),
        ["namespaces", ns, sub @ ("status" | "finalize")] => {
            target("namespaces", None, Some(ns), Some(sub))
        }
        ["namespaces", ns, plural] => target(plural, Some(ns), None, None),
        [plural, name, sub] => target(plural, None, Some(name), Some(sub)),
        ["namespaces", ns, plural, name] => target(plural, Some(ns), Some(name), None),
        ["namespaces", ns, plural, name, sub] => target(plural, Some(ns), Some(name), Some(sub)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        match parse(path) {
            Some(Route::Resource(t)) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_and_cluster_paths() {
        let t = target("/api/v1/namespaces/default/configmaps/app");
        assert_eq!(
            (t.plural.as_str(), t.namespace.as_deref(), t.name.as_deref()),
            ("configmaps", Some("default"), Some("app"))
        );
        let t = target("/api/v1/namespaces/default");
        assert_eq!(
            (t.plural.as_str(), t.namespace, t.name.as_deref()),
            ("namespaces", None, Some("default"))
        );
        let t = target("/api/v1/namespaces/x/status");
        assert_eq!(
            (
                t.plural.as_str(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            ("namespaces", Some("x"), Some("status"))
        );
        let t = target("/apis/apps/v1/namespaces/a/deployments/web/status");
        assert_eq!(
            (t.group.as_str(), t.subresource.as_deref()),
            ("apps", Some("status"))
        );
        let t = target("/apis/apiextensions.k8s.io/v1/customresourcedefinitions");
        assert!(t.namespace.is_none() && t.name.is_none());
        assert_eq!(
            parse("/apis/apps/v1"),
            Some(Route::Resources {
                group: "apps".into(),
                version: "v1".into()
            })
        );
    }
}
