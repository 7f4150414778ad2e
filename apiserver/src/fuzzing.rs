//! The body of the fuzz target (apiserver/fuzz): everything a request's bytes
//! go through before storage, which must answer errors, never panic. Also run
//! by unit tests over a small corpus, so it stays compiled and correct.

use serde_json::Value;

use crate::codec;
use crate::patch::{self, PatchType};
use crate::registry::Registry;
use crate::selectors::{FieldSelector, LabelSelector};

/// Feed `data` to every decoder and every kind's strategy.
pub fn exercise(registry: &Registry, data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::path::parse(text);
        let _ = LabelSelector::parse(text);
        let _ = FieldSelector::parse(text);
    }
    let decoded: Vec<Value> = [codec::decode_json(data), codec::decode_yaml(data)]
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    for obj in &decoded {
        for info in &registry.resources {
            let s = &info.strategy;
            let Ok((mut normalized, _unknown)) = s.normalize(obj) else {
                continue;
            };
            if s.default(&mut normalized).is_err() || s.prepare_for_create(&mut normalized).is_err()
            {
                continue;
            }
            let _ = s.validate(&normalized);
            let _ = s.validate_update(&normalized, &normalized);
            let _ = s.field_attrs(&serde_json::to_vec(&normalized).unwrap_or_default());
            let _ = s.cells(&normalized, "1s");
            for pt in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
                let _ = patch::apply_patch(info.kind, &normalized, pt, obj);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_runs_without_panics() {
        let reg = Registry::new();
        let corpus: &[&[u8]] = &[
            b"",
            b"{",
            b"null",
            b"[]",
            b"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\",\"ports\":[{\"containerPort\":99999}]}]}}",
            b"{\"spec\":{\"containers\":[{\"name\":\"\"},{\"name\":\"\"}],\"selector\":{\"a\":\"b\"},\"template\":{\"metadata\":{\"labels\":{\"a\":\"c\"}}}}}",
            b"{\"spec\":{\"ports\":[{\"port\":0,\"targetPort\":\"x-y-z-very-long-name-over-fifteen\"}],\"clusterIP\":\"999.1.1.1\",\"type\":\"Weird\"}}",
            b"[{\"op\":\"remove\",\"path\":\"/metadata\"},{\"op\":\"move\",\"from\":\"/spec\",\"path\":\"/spec/x\"}]",
            b"metadata:\n  name: a\n  labels: {\"bad key!\": \"v\"}\nspec: {containers: [{name: c, image: i, resources: {limits: {cpu: \"1x\"}}}]}\n",
            b"{\"metadata\":{\"$patch\":\"delete\"},\"spec\":{\"$setElementOrder/containers\":[{\"name\":1}],\"containers\":[{\"$patch\":\"replace\"}]}}",
            b"a in (b,c),!d,e notin ()",
            b"/api/v1/namespaces//pods/x/y/z",
        ];
        for data in corpus {
            exercise(&reg, data);
        }
    }
}
