//! Harness for end-to-end tests: starts real etcd and kube-apiserver processes.

pub mod apiserver;
pub mod component;
pub mod etcd;
pub mod lab;
pub mod netns;
pub mod secure;
