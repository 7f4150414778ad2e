//! Authorization on the secure port with `--authorization-mode=Node,RBAC`:
//! the real kubectl makes a Role and RoleBinding that work in their namespace
//! and nowhere else; `kubectl auth can-i` and SubjectAccessReviews answer
//! from the same rules; a kubelet's certificate may change only its own Node,
//! Lease and pods, read only its pods and what they use, and nothing else; the
//! bootstrap roles are there and come back after a restart.

use e2e_tests::secure::{text, SecureApiServer};
use serde_json::{json, Value};

const MODES: &str = "--authorization-mode=Node,RBAC";

#[test]
fn a_role_works_in_its_namespace_and_nowhere_else() {
    let api = SecureApiServer::start(&[MODES]).unwrap();
    let admin = api.identity("admin", &["system:masters"]).unwrap();
    let alice = api.identity("alice", &[]).unwrap();
    for args in [
        vec!["create", "namespace", "dev"],
        // 1.33 sends these as protobuf.
        vec![
            "create",
            "role",
            "pod-reader",
            "-n",
            "dev",
            "--verb=get,list,watch",
            "--resource=pods",
        ],
        vec![
            "create",
            "rolebinding",
            "alice-reads",
            "-n",
            "dev",
            "--role=pod-reader",
            "--user=alice",
        ],
        vec!["run", "web", "-n", "dev", "--image=nginx"],
        vec!["run", "web", "-n", "default", "--image=nginx"],
    ] {
        let out = api.kubectl(33, &admin, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    let out = api.kubectl(
        33,
        &admin,
        &["get", "rolebindings", "-n", "dev", "-o", "wide"],
    );
    assert!(text(&out).contains("Role/pod-reader"), "{}", text(&out));
    assert!(text(&out).contains("alice"), "{}", text(&out));

    for minor in [27, 33] {
        let out = api.kubectl(minor, &alice, &["get", "pods", "-n", "dev", "-o", "name"]);
        assert!(out.status.success(), "1.{minor}: {}", text(&out));
        assert_eq!(text(&out).trim(), "pod/web");
        let out = api.kubectl(minor, &alice, &["get", "pods", "-n", "default"]);
        assert!(!out.status.success());
        assert!(
            text(&out).contains("Error from server (Forbidden): pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""),
            "1.{minor}: {}",
            text(&out)
        );
        let out = api.kubectl(minor, &alice, &["delete", "pod", "web", "-n", "dev"]);
        assert!(
            text(&out).contains(
                "pods \"web\" is forbidden: User \"alice\" cannot delete resource \"pods\""
            ),
            "1.{minor}: {}",
            text(&out)
        );
    }
    let can = |args: &[&str]| {
        String::from_utf8_lossy(&api.kubectl(33, &alice, args).stdout)
            .trim()
            .to_string()
    };
    assert_eq!(can(&["auth", "can-i", "list", "pods", "-n", "dev"]), "yes");
    assert_eq!(
        can(&["auth", "can-i", "list", "pods", "-n", "default"]),
        "no"
    );
    assert_eq!(can(&["auth", "can-i", "create", "clusterroles"]), "no");
    let whoami = text(&api.kubectl(
        33,
        &alice,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ],
    ));
    assert_eq!(whoami.trim(), "alice [\"system:authenticated\"]");

    // A SubjectAccessReview asks the same question for someone else.
    let review = |ns: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "spec": {"user": "alice", "resourceAttributes": {"namespace": ns, "verb": "get", "resource": "pods"}}})
        .to_string()
    };
    let sar = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let (code, body) = api.curl(Some(&admin), "POST", sar, Some(&review("dev")));
    assert_eq!(code, 201, "{body}");
    assert_eq!(json_of(&body)["status"]["allowed"], json!(true), "{body}");
    let (_, body) = api.curl(Some(&admin), "POST", sar, Some(&review("default")));
    assert_eq!(json_of(&body)["status"]["allowed"], json!(false), "{body}");
    // ... but alice may not ask about others.
    let (code, _) = api.curl(Some(&alice), "POST", sar, Some(&review("dev")));
    assert_eq!(code, 403);
    let (code, body) = api.curl(
        Some(&admin),
        "POST",
        sar,
        Some(r#"{"spec": {"user": "x"}}"#),
    );
    assert_eq!(code, 422, "{body}");

    // Anonymous: health yes, anything else 401; alice: discovery yes, metrics no.
    assert_eq!(api.curl(None, "GET", "/healthz", None).0, 200);
    assert_eq!(api.curl(None, "GET", "/api/v1/namespaces", None).0, 401);
    assert_eq!(api.curl(Some(&alice), "GET", "/apis", None).0, 200);
    let (code, body) = api.curl(Some(&alice), "GET", "/metrics", None);
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        json_of(&body)["message"],
        json!("forbidden: User \"alice\" cannot get path \"/metrics\"")
    );
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn node_json(name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}).to_string()
}

fn pod_json(name: &str, node: &str, config_map: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox",
                    "envFrom": [{"configMapRef": {"name": config_map}}]}]}})
    .to_string()
}

fn lease_json(name: &str) -> String {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
           "spec": {"holderIdentity": name}})
    .to_string()
}

#[test]
fn a_kubelet_may_touch_only_its_own_node_and_pods() {
    let api = SecureApiServer::start(&[MODES]).unwrap();
    let admin = api.identity("admin", &["system:masters"]).unwrap();
    let n1 = api.identity("system:node:n1", &["system:nodes"]).unwrap();
    let as_admin = |method: &str, path: &str, body: Option<&str>| {
        let (code, text) = api.curl(Some(&admin), method, path, body);
        assert!(code < 300, "{method} {path}: {code} {text}");
    };
    as_admin("POST", "/api/v1/nodes", Some(&node_json("n2")));
    for (cm, _) in [("cfg-n1", ()), ("cfg-n2", ())] {
        as_admin(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(&json!({"metadata": {"name": cm}, "data": {"k": "v"}}).to_string()),
        );
    }
    as_admin(
        "POST",
        "/api/v1/namespaces/default/pods",
        Some(&pod_json("on-n1", "n1", "cfg-n1")),
    );
    as_admin(
        "POST",
        "/api/v1/namespaces/default/pods",
        Some(&pod_json("on-n2", "n2", "cfg-n2")),
    );

    let uid_of = |pod: &str| {
        let path = format!("/api/v1/namespaces/default/pods/{pod}");
        let (_, text) = api.curl(Some(&admin), "GET", &path, None);
        json_of(&text)["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (on_n1_uid, on_n2_uid) = (uid_of("on-n1"), uid_of("on-n2"));
    let node =
        |method: &str, path: &str, body: Option<&str>| api.curl(Some(&n1), method, path, body);
    let allowed = [
        ("POST", "/api/v1/nodes".to_string(), Some(node_json("n1"))),
        ("PATCH", "/api/v1/nodes/n1/status".into(), Some(r#"{"status":{"phase":"Running"}}"#.into())),
        ("GET", "/api/v1/nodes/n2".into(), None),
        ("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1".into(), None),
        ("GET", "/api/v1/namespaces/default/pods/on-n1".into(), None),
        ("PATCH", "/api/v1/namespaces/default/pods/on-n1/status".into(), Some(r#"{"status":{"message":"hi"}}"#.into())),
        ("GET", "/api/v1/namespaces/default/configmaps/cfg-n1".into(), None),
        ("GET", "/api/v1/namespaces/default/services".into(), None),
        ("POST", "/api/v1/namespaces/default/serviceaccounts/default/token".into(), Some(json!({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "on-n1", "uid": on_n1_uid}}}).to_string())),
        ("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases".into(), Some(lease_json("n1"))),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1".into(), Some(lease_json("n1"))),
        ("POST", "/api/v1/namespaces/default/events".into(), Some(json!({"metadata": {"name": "e1"}, "involvedObject": {"kind": "Node", "name": "n1"}, "reason": "Starting", "message": "m", "type": "Normal"}).to_string())),
    ];
    for (method, path, body) in &allowed {
        let (code, text) = node(method, path, body.as_deref());
        assert!(code < 300, "n1 {method} {path}: {code} {text}");
    }
    let forbidden = [
        ("POST", "/api/v1/nodes", Some(node_json("n3")), "node \"n1\" is not allowed to modify node \"n3\""),
        ("DELETE", "/api/v1/nodes/n2", None, "nodes \"n2\" is forbidden: User \"system:node:n1\" cannot delete resource \"nodes\" in API group \"\" at the cluster scope: node 'n1' cannot modify node 'n2'"),
        ("PATCH", "/api/v1/nodes/n2/status", Some(r#"{"status":{}}"#.into()), "cannot modify node 'n2'"),
        ("GET", "/api/v1/pods", None, "can only list/watch pods with spec.nodeName=n1 field selector"),
        ("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn2", None, "field selector"),
        ("GET", "/api/v1/namespaces/default/pods/on-n2", None, "no relationship found between node 'n1' and this object"),
        ("PATCH", "/api/v1/namespaces/default/pods/on-n2/status", Some(r#"{"status":{}}"#.into()), "no relationship"),
        ("DELETE", "/api/v1/namespaces/default/pods/on-n2", None, "no relationship"),
        ("GET", "/api/v1/namespaces/default/configmaps/cfg-n2", None, "no relationship"),
        ("GET", "/api/v1/namespaces/default/configmaps", None, "can only read individual configmaps"),
        ("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", Some(lease_json("n2")), "is not allowed to modify lease \"n2\""),
        ("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", Some(json!({"metadata": {"name": "mine"}, "rules": []}).to_string()), "cannot create resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\""),
        ("GET", "/api/v1/namespaces/kube-system/configmaps/cfg-n1", None, "no relationship"),
        ("POST", "/api/v1/namespaces/default/serviceaccounts/other/token", Some(json!({"spec": {}}).to_string()), "no relationship"),
        // NodeRestriction: its pods' account, but only bound to its own pod.
        ("POST", "/api/v1/namespaces/default/serviceaccounts/default/token", Some(json!({"spec": {}}).to_string()), "serviceaccounts \"default\" is forbidden: node requested token not bound to a pod"),
        ("POST", "/api/v1/namespaces/default/serviceaccounts/default/token", Some(json!({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "on-n2", "uid": on_n2_uid}}}).to_string()), "node requested token bound to a pod scheduled on a different node"),
        ("POST", "/api/v1/namespaces/default/serviceaccounts/default/token", Some(json!({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "on-n1"}}}).to_string()), "node requested token with a pod binding without a uid"),
    ];
    for (method, path, body, message) in &forbidden {
        let (code, text) = node(method, path, body.as_deref());
        assert_eq!(code, 403, "n1 {method} {path}: {text}");
        let status = json_of(&text);
        assert_eq!(status["reason"], json!("Forbidden"), "{text}");
        assert!(
            status["message"].as_str().unwrap_or("").contains(message),
            "n1 {method} {path}: {text}"
        );
    }
    // The pod bound to n1 may go; n2 and its pod are untouched.
    let (code, text) = node("DELETE", "/api/v1/namespaces/default/pods/on-n1", None);
    assert!(code < 300, "{code} {text}");
    assert_eq!(
        api.curl(Some(&admin), "GET", "/api/v1/nodes/n2", None).0,
        200
    );
    assert_eq!(
        api.curl(
            Some(&admin),
            "GET",
            "/api/v1/namespaces/default/pods/on-n2",
            None
        )
        .0,
        200
    );
}

#[test]
fn nobody_grants_what_they_do_not_hold() {
    let api = SecureApiServer::start(&[MODES]).unwrap();
    let admin = api.identity("admin", &["system:masters"]).unwrap();
    let lead = api.identity("lead", &[]).unwrap();
    for args in [
        vec!["create", "namespace", "dev"],
        vec!["create", "namespace", "prod"],
        vec![
            "create",
            "rolebinding",
            "lead-admin",
            "-n",
            "dev",
            "--clusterrole=admin",
            "--user=lead",
        ],
    ] {
        let out = api.kubectl(33, &admin, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    // Within what "admin" holds in dev: fine.
    for args in [
        vec![
            "create",
            "rolebinding",
            "bob-edits",
            "-n",
            "dev",
            "--clusterrole=edit",
            "--user=bob",
        ],
        vec![
            "create",
            "role",
            "deleter",
            "-n",
            "dev",
            "--verb=delete",
            "--resource=pods",
        ],
    ] {
        let out = api.kubectl(33, &lead, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    // More than that: refused, naming what is not held.
    let out = api.kubectl(
        33,
        &lead,
        &[
            "create",
            "rolebinding",
            "me-root",
            "-n",
            "dev",
            "--clusterrole=cluster-admin",
            "--user=lead",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("rolebindings.rbac.authorization.k8s.io \"me-root\" is forbidden: user \"lead\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held"),
        "{}",
        text(&out)
    );
    let out = api.kubectl(
        33,
        &lead,
        &[
            "create",
            "role",
            "nodes",
            "-n",
            "dev",
            "--verb=get",
            "--resource=nodes",
        ],
    );
    assert!(
        text(&out).contains("{APIGroups:[\"\"], Resources:[\"nodes\"], Verbs:[\"get\"]}"),
        "{}",
        text(&out)
    );
    // And nothing in another namespace.
    let out = api.kubectl(
        33,
        &lead,
        &[
            "create",
            "rolebinding",
            "bob-edits",
            "-n",
            "prod",
            "--clusterrole=edit",
            "--user=bob",
        ],
    );
    assert!(
        text(&out).contains("cannot create resource \"rolebindings\""),
        "{}",
        text(&out)
    );
    // Widening an existing role is an update: refused the same way.
    let out = api.kubectl(33, &lead, &["patch", "role", "deleter", "-n", "dev", "--type=json", "-p", r#"[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["nodes"],"verbs":["delete"]}}]"#]);
    assert!(
        text(&out).contains("attempting to grant RBAC permissions not currently held"),
        "{}",
        text(&out)
    );
}

#[test]
fn bootstrap_roles_exist_and_come_back() {
    let mut api = SecureApiServer::start(&[MODES]).unwrap();
    let admin = api.identity("admin", &["system:masters"]).unwrap();
    let out = api.kubectl(33, &admin, &["get", "clusterroles", "-o", "name"]);
    for role in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:node-proxier",
        "system:kube-dns",
        "system:kubelet-api-admin",
    ] {
        assert!(
            text(&out).contains(&format!("clusterrole.rbac.authorization.k8s.io/{role}\n")),
            "{role} missing: {}",
            text(&out)
        );
    }
    // The components' identities may do their work, and not more.
    let proxy = api.identity("system:kube-proxy", &[]).unwrap();
    assert_eq!(
        api.curl(
            Some(&proxy),
            "GET",
            "/api/v1/endpoints?watch=1&timeoutSeconds=1",
            None
        )
        .0,
        200
    );
    assert_eq!(api.curl(Some(&proxy), "GET", "/api/v1/pods", None).0, 403);
    let scheduler = api.identity("system:kube-scheduler", &[]).unwrap();
    assert_eq!(
        api.curl(Some(&scheduler), "GET", "/api/v1/pods", None).0,
        200
    );
    assert_eq!(
        api.curl(Some(&scheduler), "DELETE", "/api/v1/nodes/x", None)
            .0,
        403
    );
    // Refusals are counted like any request.
    let (code, metrics) = api.curl(Some(&admin), "GET", "/metrics", None);
    assert_eq!(code, 200);
    assert!(
        metrics.contains(
            "apiserver_request_total{verb=\"DELETE\",resource=\"nodes\",code=\"403\"} 1\n"
        ),
        "{metrics}"
    );

    // A role losing a rule gets it back at the next start; one that opts out
    // of updates keeps the admin's change.
    let out = api.kubectl(
        33,
        &admin,
        &[
            "patch",
            "clusterrole",
            "system:node-proxier",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/rules","value":[]}]"#,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = api.kubectl(
        33,
        &admin,
        &[
            "annotate",
            "--overwrite",
            "clusterrole",
            "view",
            "rbac.authorization.kubernetes.io/autoupdate=false",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = api.kubectl(
        33,
        &admin,
        &[
            "patch",
            "clusterrole",
            "view",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/rules","value":[]}]"#,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    api.restart().unwrap();
    assert_eq!(
        api.curl(Some(&proxy), "GET", "/api/v1/services", None).0,
        200
    );
    let out = api.kubectl(
        33,
        &admin,
        &["get", "clusterrole", "view", "-o", "jsonpath={.rules}"],
    );
    assert_eq!(text(&out).trim(), "[]", "{}", text(&out));
}

#[test]
fn service_account_tokens_authenticate_until_revoked() {
    let api = SecureApiServer::start(&[MODES]).unwrap();
    let admin = api.identity("admin", &["system:masters"]).unwrap();
    for args in [
        vec!["create", "namespace", "ci"],
        vec!["create", "serviceaccount", "builder", "-n", "ci"],
        vec![
            "create",
            "rolebinding",
            "builder-views",
            "-n",
            "ci",
            "--clusterrole=view",
            "--serviceaccount=ci:builder",
        ],
        vec![
            "run",
            "job",
            "-n",
            "ci",
            "--image=busybox",
            "--overrides={\"spec\":{\"serviceAccountName\":\"builder\"}}",
        ],
        vec!["run", "other", "-n", "ci", "--image=busybox"],
    ] {
        let out = api.kubectl(33, &admin, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    let token_for = |extra: &[&str]| {
        let mut args = vec!["create", "token", "builder", "-n", "ci"];
        args.extend_from_slice(extra);
        let out = api.kubectl(33, &admin, &args);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let token = token_for(&[]);
    let (code, body) = api.curl_token(&token, "GET", "/api/v1/namespaces/ci/pods");
    assert_eq!(code, 200, "{body}");
    let (code, body) = api.curl_token(&token, "GET", "/api/v1/namespaces/default/pods");
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(
            "User \\\"system:serviceaccount:ci:builder\\\" cannot list resource \\\"pods\\\""
        ),
        "{body}"
    );
    let (code, body) = api.curl_token(
        &token,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    );
    assert_eq!(code, 400, "an empty body is not a review: {body}");

    // A token from another key, a tampered one, an expired one: 401.
    let key = std::fs::read_to_string(api.dir().join("certs/sa.key")).unwrap();
    let iss = "https://kubernetes.default.svc.cluster.local".to_string();
    let ours =
        apiserver::serviceaccount::Tokens::new(&key, &[], vec![iss.clone()], vec![iss.clone()])
            .unwrap();
    let mut claims = match ours.verify(&token) {
        Some(Ok(c)) => c,
        other => panic!("the server's token does not verify with its key: {other:?}"),
    };
    let now = claims.iat;
    claims.iat = now - 7200;
    claims.nbf = now - 7200;
    claims.exp = now - 3600;
    let expired = ours.issue(&claims).unwrap();
    assert_eq!(
        api.curl_token(&expired, "GET", "/api/v1/namespaces/ci/pods")
            .0,
        401
    );
    let other = apiserver::serviceaccount::Tokens::new(
        &std::fs::read_to_string(other_key(&api)).unwrap(),
        &[],
        vec![iss.clone()],
        vec![iss],
    )
    .unwrap();
    claims.exp = now + 3600;
    let forged = other.issue(&claims).unwrap();
    assert_eq!(
        api.curl_token(&forged, "GET", "/api/v1/namespaces/ci/pods")
            .0,
        401
    );
    let mut tampered: Vec<String> = token.split('.').map(String::from).collect();
    let swap = if &tampered[1][10..12] == "AA" {
        "BB"
    } else {
        "AA"
    };
    tampered[1].replace_range(10..12, swap);
    assert_eq!(
        api.curl_token(&tampered.join("."), "GET", "/api/v1/namespaces/ci/pods")
            .0,
        401
    );

    // Bound to a pod: dies with it. Any token dies with its service account.
    let out = api.kubectl(
        33,
        &admin,
        &[
            "get",
            "pod",
            "job",
            "-n",
            "ci",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    );
    let uid = text(&out);
    // Not to a pod that runs as another account.
    let out = api.kubectl(
        33,
        &admin,
        &[
            "create",
            "token",
            "builder",
            "-n",
            "ci",
            "--bound-object-kind=Pod",
            "--bound-object-name=other",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("cannot bind token for serviceaccount \"builder\" to pod running with different serviceaccount name"),
        "{}",
        text(&out)
    );
    let bound = token_for(&[
        "--bound-object-kind=Pod",
        "--bound-object-name=job",
        &format!("--bound-object-uid={uid}"),
    ]);
    assert_eq!(
        api.curl_token(&bound, "GET", "/api/v1/namespaces/ci/pods")
            .0,
        200
    );
    let out = api.kubectl(
        33,
        &admin,
        &[
            "delete",
            "pod",
            "job",
            "-n",
            "ci",
            "--grace-period=0",
            "--force",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        api.curl_token(&bound, "GET", "/api/v1/namespaces/ci/pods")
            .0,
        401
    );
    assert_eq!(
        api.curl_token(&token, "GET", "/api/v1/namespaces/ci/pods")
            .0,
        200
    );
    let out = api.kubectl(
        33,
        &admin,
        &["delete", "serviceaccount", "builder", "-n", "ci"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        api.curl_token(&token, "GET", "/api/v1/namespaces/ci/pods")
            .0,
        401
    );
    // Too short a life is refused.
    let out = api.kubectl(
        33,
        &admin,
        &["create", "token", "default", "-n", "ci", "--duration=5m"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("may not specify a duration less than 10 minutes"),
        "{}",
        text(&out)
    );
}

/// A signing key the server does not know.
fn other_key(api: &SecureApiServer) -> std::path::PathBuf {
    let dir = api.dir().join("other");
    apiserver::serviceaccount::token::generate_key_in(&dir).unwrap();
    dir.join("sa.key")
}
