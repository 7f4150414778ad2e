// TEMP STUB (integration placeholder)
use std::collections::BTreeMap;
pub struct LabelSelector;
impl LabelSelector { pub fn parse(_s: &str) -> Result<Self, String> { Ok(Self) } pub fn matches(&self, _l: &BTreeMap<String,String>) -> bool { true } pub fn is_empty(&self) -> bool { true } }
pub struct FieldSelector;
impl FieldSelector { pub fn parse(_s: &str) -> Result<Self, String> { Ok(Self) } pub fn matches(&self, _g: impl Fn(&str) -> Option<String>) -> bool { true } pub fn fields(&self) -> Vec<&str> { vec![] } }
