//! Which objects a list or watch returns: label and field selectors.

use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::watch_cache::CachedObject;

use super::Ctx;

pub(crate) struct Filter {
    info: &'static ResourceInfo,
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    /// The filter of a request, plus a single-object filter for watches of one name.
    pub fn from_ctx(ctx: &Ctx<'_>, name: Option<&str>) -> ApiResult<Self> {
        let labels = match ctx.query.get("labelSelector") {
            Some(s) => {
                Some(LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?)
            }
            None => None,
        };
        let field_text = match (ctx.query.get("fieldSelector"), name) {
            (Some(s), Some(n)) => Some(format!("{s},metadata.name={n}")),
            (Some(s), None) => Some(s.to_string()),
            (None, Some(n)) => Some(format!("metadata.name={n}")),
            (None, None) => None,
        };
        let fields = match field_text {
            Some(s) => {
                let sel =
                    FieldSelector::parse(&s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                let known = ctx.info.strategy.field_names();
                for f in sel.fields() {
                    if f != "metadata.name" && f != "metadata.namespace" && !known.contains(&f) {
                        return Err(ApiError::bad_request(format!(
                            "field label not supported: {f}"
                        )));
                    }
                }
                Some(sel)
            }
            None => None,
        };
        Ok(Self {
            info: ctx.info,
            labels,
            fields,
        })
    }

    pub fn is_everything(&self) -> bool {
        self.labels.as_ref().is_none_or(|l| l.is_empty()) && self.fields.is_none()
    }

    pub fn matches(&self, obj: &CachedObject) -> bool {
        if let Some(l) = &self.labels {
            if !l.matches(obj.labels()) {
                return false;
            }
        }
        if let Some(f) = &self.fields {
            let get = |field: &str| obj.field(self.info, field).map(String::from);
            if !f.matches(get) {
                return false;
            }
        }
        true
    }
}
