//! Encoder tests: JSON -> protobuf -> JSON round trips through the decoder,
//! and the bytes read back with k8s-pb's prost structs (upstream's messages).

use k8s_pb::api::core::v1 as pb;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message as _;
use serde_json::{json, Value};

use super::super::schema::{Label, Message, Type};
use super::super::tests::{assert_k8s_openapi_round_trip, FIXTURES};
use super::super::{decode_request, table, wire};
use super::*;

fn round_trip(obj: &Value) -> Vec<u8> {
    let body = encode_response(obj).unwrap_or_else(|e| panic!("encode: {e}"));
    let back = decode_request(&body).unwrap_or_else(|e| panic!("decode: {e}"));
    assert_eq!(&back, obj);
    body
}

/// The envelope read with upstream's runtime.Unknown.
fn unknown(body: &[u8]) -> Unknown {
    let rest = body.strip_prefix(MAGIC).expect("magic");
    Unknown::decode(rest).expect("runtime.Unknown")
}

fn rich_pod(name: &str) -> Value {
    json!({
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": "7d3c9f1e-0000-4000-8000-000000000001",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"note": ""},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                "uid": "u-1", "controller": true, "blockOwnerDeletion": true
            }],
            "finalizers": ["example.com/keep"],
            "managedFields": [{
                "manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
            }]
        },
        "spec": {
            "volumes": [
                {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "cfg", "configMap": {"name": "web-cfg", "defaultMode": 420,
                    "items": [{"key": "a", "path": "a.txt"}]}}
            ],
            "containers": [{
                "name": "web",
                "image": "nginx:1.27",
                "command": ["nginx"],
                "args": ["-g", "daemon off;"],
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [
                    {"name": "MODE", "value": "prod"},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}
                ],
                "resources": {
                    "limits": {"cpu": "500m", "memory": "128Mi"},
                    "requests": {"cpu": "250m"}
                },
                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}],
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                    "initialDelaySeconds": 5, "periodSeconds": 10
                },
                "readinessProbe": {"tcpSocket": {"port": 80}, "timeoutSeconds": 2},
                "securityContext": {"runAsUser": 1000, "runAsNonRoot": true, "privileged": false},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "serviceAccountName": "default",
            "nodeName": "node-1",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0,
            "enableServiceLinks": true
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True",
                "lastTransitionTime": "2024-05-01T10:00:05Z"}],
            "hostIP": "192.168.1.10",
            "podIP": "10.244.1.7",
            "podIPs": [{"ip": "10.244.1.7"}],
            "startTime": "2024-05-01T10:00:01Z",
            "containerStatuses": [{
                "name": "web",
                "state": {"running": {"startedAt": "2024-05-01T10:00:03Z"}},
                "lastState": {"terminated": {"exitCode": -1, "reason": "Error",
                    "startedAt": "2024-05-01T09:00:00Z", "finishedAt": "2024-05-01T09:59:59Z"}},
                "ready": false,
                "restartCount": 0,
                "image": "nginx:1.27",
                "imageID": "docker.io/library/nginx@sha256:abc",
                "containerID": "containerd://123",
                "started": true
            }],
            "qosClass": "Burstable"
        }
    })
}

fn with_type(api_version: &str, kind: &str, mut obj: Value) -> Value {
    let fields = obj.as_object_mut().expect("an object");
    fields.insert("apiVersion".into(), api_version.into());
    fields.insert("kind".into(), kind.into());
    obj
}

fn pod(name: &str) -> Value {
    with_type("v1", "Pod", rich_pod(name))
}

#[test]
fn kubectl_fixtures_round_trip() {
    for (name, body) in FIXTURES {
        match decode_request(body) {
            Ok(obj) => {
                round_trip(&obj);
            }
            // Kinds the decoder does not read are not encoded either.
            Err(e) if e.is_unsupported() => {
                let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}});
                assert!(encode_response(&obj).unwrap_err().is_unsupported());
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn full_pod_round_trips_and_reads_as_upstream_pod() {
    let obj = pod("web-1");
    assert_k8s_openapi_round_trip::<k8s_openapi::api::core::v1::Pod>(&obj);
    let body = round_trip(&obj);

    let envelope = unknown(&body);
    let type_meta = envelope.type_meta.expect("typeMeta");
    assert_eq!(type_meta.api_version.as_deref(), Some("v1"));
    assert_eq!(type_meta.kind.as_deref(), Some("Pod"));
    assert_eq!(envelope.content_encoding.as_deref(), Some(""));
    assert_eq!(envelope.content_type.as_deref(), Some(""));

    let pod = pb::Pod::decode(envelope.raw.expect("raw").as_slice()).expect("a k8s-pb Pod");
    let meta = pod.metadata.expect("metadata");
    assert_eq!(meta.name.as_deref(), Some("web-1"));
    assert_eq!(meta.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(
        meta.creation_timestamp.and_then(|t| t.seconds),
        Some(1_714_557_600)
    );
    let fields = meta.managed_fields[0].fields_v1.clone().expect("fieldsV1");
    let raw: Value = serde_json::from_slice(&fields.raw.expect("raw")).expect("JSON");
    assert_eq!(raw["f:metadata"]["f:labels"]["f:app"], json!({}));

    let spec = pod.spec.expect("spec");
    let web = &spec.containers[0];
    assert_eq!(web.ports[0].container_port, Some(80));
    assert_eq!(
        web.resources.as_ref().expect("resources").limits["memory"]
            .string
            .as_deref(),
        Some("128Mi")
    );
    let probe = web.liveness_probe.as_ref().expect("probe");
    let port = probe
        .handler
        .as_ref()
        .and_then(|h| h.http_get.as_ref())
        .and_then(|g| g.port.as_ref())
        .expect("httpGet port");
    assert_eq!(
        (port.r#type, port.str_val.as_deref()),
        (Some(1), Some("http"))
    );
    let volume = spec.volumes[1]
        .volume_source
        .as_ref()
        .expect("volumeSource");
    assert_eq!(
        volume.config_map.as_ref().and_then(|c| c.default_mode),
        Some(420)
    );
    assert_eq!(spec.termination_grace_period_seconds, Some(30));

    let status = pod.status.expect("status");
    assert_eq!(status.pod_ip.as_deref(), Some("10.244.1.7"));
    let terminated = status.container_statuses[0]
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("terminated");
    assert_eq!(terminated.exit_code, Some(-1));
}

#[test]
fn pod_list_round_trips_and_reads_as_upstream_list() {
    let list = json!({
        "apiVersion": "v1", "kind": "PodList",
        "metadata": {"resourceVersion": "77", "continue": "tok", "remainingItemCount": 5},
        "items": [rich_pod("a"), rich_pod("b")]
    });
    let body = round_trip(&list);
    let envelope = unknown(&body);
    assert_eq!(
        envelope.type_meta.and_then(|t| t.kind).as_deref(),
        Some("PodList")
    );
    let decoded = pb::PodList::decode(envelope.raw.expect("raw").as_slice()).expect("PodList");
    let meta = decoded.metadata.expect("metadata");
    assert_eq!(meta.resource_version.as_deref(), Some("77"));
    assert_eq!(meta.remaining_item_count, Some(5));
    let names: Vec<_> = decoded
        .items
        .iter()
        .map(|p| p.metadata.as_ref().and_then(|m| m.name.clone()))
        .collect();
    assert_eq!(names, [Some("a".to_string()), Some("b".to_string())]);
    assert_eq!(
        decoded.items[1].spec.as_ref().map(|s| s.containers.len()),
        Some(1)
    );
}

#[test]
fn every_kind_has_a_list_and_empty_lists_encode() {
    for (version, kind, _) in table::ROOTS {
        if *version == "*"
            || kind.ends_with("List")
            || ["Binding", "Scale", "Status"].contains(kind)
            || kind.ends_with("Review")
            || *kind == "TokenRequest"
        {
            continue;
        }
        let list = json!({"apiVersion": version, "kind": format!("{kind}List"), "metadata": {}});
        round_trip(&list);
    }
}

#[test]
fn status_with_details_and_causes() {
    let status = json!({
        "apiVersion": "v1", "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": "Pod \"x\" is invalid",
        "reason": "Invalid",
        "details": {
            "name": "x", "kind": "Pod", "uid": "u-9", "retryAfterSeconds": 3,
            "causes": [
                {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"},
                {"reason": "FieldValueInvalid", "message": "bad", "field": "metadata.name"}
            ]
        },
        "code": 422
    });
    assert_k8s_openapi_round_trip::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>(
        &status,
    );
    let body = round_trip(&status);
    let raw = unknown(&body).raw.expect("raw");
    let decoded =
        k8s_pb::apimachinery::pkg::apis::meta::v1::Status::decode(raw.as_slice()).expect("Status");
    assert_eq!(decoded.code, Some(422));
    assert_eq!(decoded.details.expect("details").causes.len(), 2);
}

#[test]
fn node_round_trips() {
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
        "spec": {
            "podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"],
            "taints": [{"key": "k", "value": "v", "effect": "NoSchedule", "timeAdded": "2023-11-14T22:13:20Z"}],
            "unschedulable": true
        },
        "status": {
            "capacity": {"cpu": "2", "memory": "4012Mi", "pods": "110"},
            "allocatable": {"cpu": "1900m", "memory": "0"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": "2023-11-14T22:16:40Z", "lastTransitionTime": "2023-11-14T22:00:00Z"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "node-1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.1",
                "osImage": "Debian", "containerRuntimeVersion": "containerd://1.7", "kubeletVersion": "v1.33.0",
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
            "images": [{"names": ["nginx:1.27"], "sizeBytes": 67_000_000_000_i64}]
        }
    });
    assert_k8s_openapi_round_trip::<k8s_openapi::api::core::v1::Node>(&node);
    round_trip(&node);
}

#[test]
fn service_with_int_or_string_ports() {
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "web"},
            "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 30080},
                {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9090}
            ],
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster"
        },
        "status": {"loadBalancer": {}}
    });
    assert_k8s_openapi_round_trip::<k8s_openapi::api::core::v1::Service>(&service);
    let body = round_trip(&service);
    let raw = unknown(&body).raw.expect("raw");
    let decoded = pb::Service::decode(raw.as_slice()).expect("Service");
    let ports = decoded.spec.expect("spec").ports;
    let target = |i: usize| ports[i].target_port.clone().expect("targetPort");
    assert_eq!(
        (target(0).r#type, target(0).str_val.as_deref()),
        (Some(1), Some("http"))
    );
    assert_eq!((target(1).r#type, target(1).int_val), (Some(0), Some(9090)));
}

#[test]
fn lease_with_micro_times_and_configmap_bytes() {
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
            "renewTime": "2024-05-01T10:00:00.123456Z", "acquireTime": "2024-05-01T09:00:00.000000Z"}
    });
    round_trip(&lease);
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"b": "2", "a": ""},
        "binaryData": {"bin": "AAEC/w=="}
    });
    round_trip(&cm);
}

#[test]
fn maps_are_written_in_key_order() {
    let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"b": "2", "a": "1"}});
    let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
    assert_eq!(encode_response(&a).unwrap(), encode_response(&b).unwrap());
}

/// Record numbers never go down, in every message the schema describes.
fn assert_in_order(bytes: &[u8], msg: &'static Message) {
    let mut last = 0;
    for record in wire::records(bytes) {
        let (number, value) = record.expect("a record");
        assert!(number >= last, "{}: field {number} after {last}", msg.name);
        last = number;
        let (Some(field), wire::Value::Bytes(inner)) = (msg.field(number), value) else {
            continue;
        };
        if let (Type::Message(m), Label::Single | Label::Repeated | Label::Inline) =
            (field.ty, field.label)
        {
            assert_in_order(inner, m);
        }
    }
}

#[test]
fn fields_are_written_in_number_order() {
    let body = encode_response(&pod("p")).unwrap();
    let raw = unknown(&body).raw.expect("raw");
    let schema = root("v1", "Pod").expect("Pod schema");
    assert_in_order(&raw, schema);
}

#[test]
fn unknown_fields_and_nulls_are_skipped() {
    let obj = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "futureField": {"x": 1}, "namespace": null},
        "immutable": null,
        "somethingNew": [1, 2]
    });
    let back = decode_request(&encode_response(&obj).unwrap()).unwrap();
    assert_eq!(
        back,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    );
}

#[test]
fn unsupported_kinds_and_bad_values() {
    for obj in [
        json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
        json!({"apiVersion": "v2", "kind": "Pod"}),
        json!({"kind": "Pod"}),
        json!({"metadata": {}}),
        json!("Pod"),
    ] {
        let err = encode_response(&obj).unwrap_err();
        assert!(err.is_unsupported(), "{obj}: {err}");
    }
    // DeleteOptions is registered in every group.
    assert!(encode_response(&json!({"apiVersion": "apps/v1", "kind": "DeleteOptions"})).is_ok());

    let bad = |spec: Value| {
        let obj =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec});
        let err = encode_response(&obj).unwrap_err();
        assert!(!err.is_unsupported());
        err.to_string()
    };
    let msg = bad(json!({"containers": [{"name": "c", "ports": [{"containerPort": "80"}]}]}));
    assert!(msg.contains("spec.containers.ports.containerPort"), "{msg}");
    assert!(msg.contains("expected a number"), "{msg}");
    let msg = bad(json!({"priority": 1_i64 << 40}));
    assert!(msg.contains("int32"), "{msg}");
    let msg = bad(json!({"containers": {}}));
    assert!(msg.contains("expected an array"), "{msg}");
    let obj =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"creationTimestamp": "yesterday"}});
    assert!(encode_response(&obj)
        .unwrap_err()
        .to_string()
        .contains("metadata.creationTimestamp"));
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "binaryData": {"k": "!!"}});
    assert!(encode_response(&obj)
        .unwrap_err()
        .to_string()
        .contains("binaryData.k"));
}

#[test]
fn whole_floats_are_integers() {
    let obj = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"priority": 7.0}});
    let back = decode_request(&encode_response(&obj).unwrap()).unwrap();
    assert_eq!(back["spec"]["priority"], json!(7));
    let obj = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"priority": 7.5}});
    assert!(encode_response(&obj).is_err());
}
