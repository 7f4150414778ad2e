//! Bad requests get the right metav1.Status every time, and the server stays up.

use e2e_tests::apiserver::TestCluster;
use kube::Client;

struct Case {
    method: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    code: u16,
    reason: &'static str,
    message_has: &'static str,
}

fn case(
    method: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: &str,
    code: u16,
    reason: &'static str,
    message_has: &'static str,
) -> Case {
    Case {
        method,
        path,
        content_type,
        body: body.as_bytes().to_vec(),
        code,
        reason,
        message_has,
    }
}

async fn send(client: &Client, c: &Case) -> Result<String, kube::Error> {
    let req = http::Request::builder()
        .method(c.method)
        .uri(c.path)
        .header("content-type", c.content_type)
        .body(c.body.clone())
        .unwrap();
    client.request_text(req).await
}

const PODS: &str = "/api/v1/namespaces/default/pods";

#[tokio::test]
async fn bad_requests_get_statuses() {
    let cluster = TestCluster::start().unwrap();
    let client = cluster.apiserver.client().await.unwrap();
    let good_pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"ok"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    let mut big = String::from(
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"x":""#,
    );
    big.push_str(&"a".repeat(4 * 1024 * 1024));
    big.push_str("\"}}");
    let cases = vec![
        case(
            "POST",
            PODS,
            "application/json",
            "{not json",
            400,
            "BadRequest",
            "json",
        ),
        case(
            "POST",
            PODS,
            "application/yaml",
            "kind: [unclosed",
            400,
            "BadRequest",
            "YAML",
        ),
        case(
            "POST",
            PODS,
            "text/plain",
            good_pod,
            415,
            "UnsupportedMediaType",
            "unknown format",
        ),
        case(
            "POST",
            PODS,
            "application/json",
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"}}"#,
            400,
            "BadRequest",
            "kind",
        ),
        case(
            "POST",
            PODS,
            "application/json",
            r#"{"apiVersion":"v2","kind":"Pod","metadata":{"name":"x"}}"#,
            400,
            "BadRequest",
            "API version",
        ),
        case(
            "POST",
            PODS,
            "application/json",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"Bad_Name"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
            422,
            "Invalid",
            "metadata.name",
        ),
        case(
            "POST",
            PODS,
            "application/json",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"nocontainers"},"spec":{}}"#,
            422,
            "Invalid",
            "spec.containers",
        ),
        case(
            "POST",
            PODS,
            "application/json",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{},"spec":{"containers":[{"name":"c","image":"i"}]}}"#,
            422,
            "Invalid",
            "name or generateName is required",
        ),
        case(
            "POST",
            "/api/v1/namespaces/default/pods?fieldValidation=Strict",
            "application/json",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"s"},"spec":{"containers":[{"name":"c","image":"i","bogus":1}]}}"#,
            400,
            "BadRequest",
            "unknown field \"spec.containers[0].bogus\"",
        ),
        case(
            "POST",
            PODS,
            "application/json",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"t"},"spec":{"containers":"notalist"}}"#,
            400,
            "BadRequest",
            "cannot be handled as a Pod",
        ),
        case(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            &big,
            413,
            "RequestEntityTooLarge",
            "limit",
        ),
        case(
            "GET",
            "/api/v1/namespaces/default/widgets",
            "application/json",
            "",
            404,
            "NotFound",
            "",
        ),
        case(
            "GET",
            "/apis/nope.example.com/v1/things",
            "application/json",
            "",
            404,
            "NotFound",
            "",
        ),
        case(
            "PUT",
            PODS,
            "application/json",
            good_pod,
            405,
            "MethodNotAllowed",
            "",
        ),
        case(
            "POST",
            "/api/v1/pods",
            "application/json",
            good_pod,
            405,
            "MethodNotAllowed",
            "",
        ),
        case(
            "POST",
            "/api/v1/namespaces/missing/pods",
            "application/json",
            good_pod,
            404,
            "NotFound",
            "namespaces \"missing\" not found",
        ),
        case(
            "GET",
            "/api/v1/namespaces/default/pods?labelSelector=a%20in%20(",
            "application/json",
            "",
            400,
            "BadRequest",
            "",
        ),
        case(
            "GET",
            "/api/v1/namespaces/default/pods?resourceVersion=abc",
            "application/json",
            "",
            400,
            "BadRequest",
            "resource version",
        ),
        case(
            "GET",
            "/api/v1/namespaces/default/pods?continue=garbage",
            "application/json",
            "",
            400,
            "BadRequest",
            "continue",
        ),
        case(
            "PATCH",
            "/api/v1/namespaces/default/pods/ok",
            "application/json",
            "{}",
            415,
            "UnsupportedMediaType",
            "",
        ),
        case(
            "PATCH",
            "/api/v1/namespaces/default/pods/ok",
            "application/merge-patch+json",
            "[1,",
            400,
            "BadRequest",
            "",
        ),
        case(
            "PUT",
            "/api/v1/namespaces/default/pods/other",
            "application/json",
            good_pod,
            400,
            "BadRequest",
            "does not match the name on the URL",
        ),
        case(
            "POST",
            "/api/v1/namespaces/default/pods?dryRun=Maybe",
            "application/json",
            good_pod,
            400,
            "BadRequest",
            "dry run",
        ),
    ];
    for c in &cases {
        match send(&client, c).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!(
                    (s.code, s.reason.as_str()),
                    (c.code, c.reason),
                    "{} {}: {s:?}",
                    c.method,
                    c.path
                );
                assert!(
                    s.message.contains(c.message_has),
                    "{} {}: message {:?} lacks {:?}",
                    c.method,
                    c.path,
                    s.message,
                    c.message_has
                );
            }
            other => panic!(
                "{} {} {}: expected {} got {other:?}",
                c.method,
                c.path,
                String::from_utf8_lossy(&c.body[..c.body.len().min(80)]),
                c.code
            ),
        }
    }
    // Still serving, and a good create works.
    let ok = Case {
        method: "POST",
        path: PODS,
        content_type: "application/json",
        body: good_pod.as_bytes().to_vec(),
        code: 201,
        reason: "",
        message_has: "",
    };
    send(&client, &ok)
        .await
        .expect("good create after bad input");
    let mut server = cluster;
    assert!(server.apiserver.alive());
}
