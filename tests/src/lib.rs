//! Harness for end-to-end tests: starts real etcd and kube-apiserver processes.

pub mod etcd;
pub mod apiserver;
